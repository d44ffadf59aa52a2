import json
import math
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from nrp.errors import CheckpointError, InputError, WeightsUnavailableError
from nrp.purifiers import load_network
from nrp.training import Trainer
from nrp.training.checkpointing import list_checkpoints


@pytest.fixture(scope="module")
def squeezenet_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("squeezenet") / "squeezenet1_1.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize("perturbation", ["ssp", "gaussian", "fgsm"])
@pytest.mark.parametrize("gan", ["relativistic", "vanilla"])
def test_one_iteration_gives_finite_losses_for_every_source_and_gan(tiny_config, squeezenet_weights, perturbation, gan):
    config = tiny_config(perturbation=perturbation, gan=gan, fgsm_model="squeezenet1_1", fgsm_weights=str(squeezenet_weights), val=[])
    trainer = Trainer(config)
    before = [p.detach().clone() for p in trainer.purifier.parameters()]
    clean = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=4, sampler=[(i, i) for i in range(4)])))
    losses = trainer.train_step(clean)
    assert set(losses) == {"purifier_total", "purifier_adversarial", "purifier_pixel", "purifier_feature", "critic_loss"}
    assert all(math.isfinite(value) for value in losses.values())
    assert losses["purifier_adversarial"] > 0 and losses["critic_loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.purifier.parameters()))


@pytest.mark.parametrize("perturbation", ["ssp", "gaussian"])
def test_perturbations_stay_in_the_eps_ball(tiny_config, perturbation):
    trainer = Trainer(tiny_config(perturbation=perturbation, eps=8, val=[]))
    clean = torch.rand(4, 3, 32, 32)
    perturbed = trainer.perturb_batch(clean, iteration=0)
    assert (perturbed - clean).abs().max() <= 8 / 255 + 1e-6
    assert (perturbed - clean).abs().max() >= 4 / 255  # and really perturb
    assert torch.equal(perturbed, trainer.perturb_batch(clean, iteration=0))


def test_with_only_the_pixel_loss_the_purifier_learns_a_fixed_batch(tiny_config):
    trainer = Trainer(tiny_config(perturbation="gaussian", loss_weights=[0.0, 1.0, 0.0], lr=1e-3, val=[]))
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 32, 32)
    perturbed = trainer.perturb_batch(clean, iteration=0)
    first = trainer.purifier_step(clean, perturbed)[1]["purifier_pixel"]
    for _ in range(49):
        last = trainer.purifier_step(clean, perturbed)[1]["purifier_pixel"]
    assert last < 0.2 * first
    assert trainer.critic_step(clean, perturbed) == {}  # alpha = 0: no critic work at all


def test_a_run_writes_checkpoints_validation_grids_logs_and_the_final_purifier(tiny_config):
    config = tiny_config(keep_checkpoints=1)
    final = Trainer(config).train()
    run = Path(config.out)
    assert final == run / "purifier.safetensors"
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iteration_00000004.pth"]
    assert sorted(p.name for p in (run / "validation").iterdir()) == ["iteration_00000002.png", "iteration_00000004.png"]
    records = [line for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 + 2  # a train record per iteration, a val record per validation
    # The checkpoint's purifier part is what `nrp purify --weights` loads, with no other flag.
    from_checkpoint = load_network(run / "checkpoints" / "iteration_00000004.pth")
    from_final = load_network(final)
    for a, b in zip(from_checkpoint.state_dict().values(), from_final.state_dict().values()):
        assert torch.equal(a, b)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tiny_config, tmp_path):
    whole = Trainer(tiny_config(out=str(tmp_path / "whole"), iterations=6, checkpoint_every=3))
    whole.train()
    Trainer(tiny_config(out=str(tmp_path / "split"), iterations=3, checkpoint_every=3)).train()  # "killed" after 3
    resumed = Trainer(tiny_config(out=str(tmp_path / "split"), iterations=6, checkpoint_every=3, resume=True))
    assert resumed.iteration == 3
    resumed.train()
    for a, b in zip(whole.purifier.state_dict().values(), resumed.purifier.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(whole.critic.state_dict().values(), resumed.critic.state_dict().values()):
        assert torch.equal(a, b)
    # The resumed log reads like the uninterrupted one: the same training losses at every iteration, once.
    assert training_losses(tmp_path / "split") == training_losses(tmp_path / "whole")


def training_losses(run: Path) -> list[tuple]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["iteration"], r["purifier_total"], r["critic_loss"]) for r in records if r["split"] == "train"]


def test_a_half_written_checkpoint_is_never_picked_up(tiny_config, tmp_path):
    config = tiny_config(iterations=2, checkpoint_every=2)
    Trainer(config).train()
    folder = Path(config.out) / "checkpoints"
    # What a process killed inside torch.save leaves: a hidden temporary file, never a finished name.
    (folder / ".iteration_00000004.pth.k2j3.tmp").write_bytes(b"PK\x03\x04 truncated")
    assert [p.name for p in list_checkpoints(folder)] == ["iteration_00000002.pth"]
    resumed = Trainer(tiny_config(iterations=4, checkpoint_every=2, resume=True))
    assert resumed.iteration == 2


def test_existing_checkpoints_are_not_overwritten_without_resume(tiny_config):
    Trainer(tiny_config(iterations=2)).train()
    with pytest.raises(InputError, match="already holds checkpoints; pass --resume"):
        Trainer(tiny_config(iterations=2))


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"crop": 64, "resize": 48}, InputError, "crop 64 is larger than resize 48"),
        ({"backbone": "vgg17"}, InputError, "unknown backbone 'vgg17'"),
        ({"loss_weights": [1.0, -1.0, 1.0]}, InputError, "loss_weights must be three numbers >= 0"),
        ({"perturbation": "fgsm"}, InputError, "name it with --fgsm-model"),
        ({"backbone_weights": "missing.pth"}, CheckpointError, "weights file not found: missing.pth"),
        ({"batch_size": 0}, InputError, "batch_size must be >= 1, got 0"),
    ],
)
def test_bad_configuration_fails_before_the_first_iteration(tiny_config, overrides, error, message):
    with pytest.raises(error, match=message):
        Trainer(tiny_config(**overrides))


def test_an_empty_data_folder_is_named(tiny_config, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        Trainer(tiny_config(data=[str(tmp_path / "empty")]))


def test_missing_backbone_weights_offline_fail_with_the_file_name(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match="vgg16-397923af.pth"):
        Trainer(tiny_config(backbone_weights=None))


def test_validation_perturbs_every_image_even_when_training_keeps_some_clean(tiny_config):
    trainer = Trainer(tiny_config(clean_fraction=1.0))
    clean = trainer.validation_images
    assert torch.equal(trainer.perturb_batch(clean, 0), clean)  # training: every image kept clean
    scores = trainer.validate()
    assert scores["psnr_perturbed"] < 60  # validation: SSP on every image (a clean copy would score ~inf)


def test_the_input_diversity_share_attacks_its_own_layer(tiny_config):
    clean = torch.rand(4, 3, 32, 32)
    plain = Trainer(tiny_config(eps=8, val=[])).perturb_batch(clean, iteration=0)
    trainer = Trainer(tiny_config(eps=8, val=[], ssp_di_layer="conv1_1", ssp_di_fraction=1.0))
    diverse = trainer.perturb_batch(clean, iteration=0)
    assert (diverse - clean).abs().max() <= 8 / 255 + 1e-6
    assert all(not torch.equal(a, b) for a, b in zip(diverse, plain))
    assert torch.equal(diverse, trainer.perturb_batch(clean, iteration=0))
