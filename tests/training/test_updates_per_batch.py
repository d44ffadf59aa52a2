"""Several purifier and critic updates per crafted batch (``updates_per_batch``, an extension of Algorithm 2)."""

import pytest
import torch

from nrp.errors import InputError
from nrp.training import Trainer


def adam_steps(optimizer: torch.optim.Optimizer) -> set[int]:
    """The step counts Adam keeps per parameter (one value when every parameter was stepped alike)."""
    return {int(state["step"]) for state in optimizer.state.values()}


def test_k_updates_share_one_crafted_batch_and_step_both_networks_k_times(tiny_config):
    trainer = Trainer(tiny_config(updates_per_batch=3, val=[]))
    crafted, seen = [], []
    perturb, purifier_step = trainer.perturb_batch, trainer.purifier_step

    def counting_perturb(clean, iteration, validation=False):
        crafted.append(perturb(clean, iteration, validation))
        return crafted[-1]

    def recording_step(clean, perturbed):
        seen.append(perturbed.clone())
        return purifier_step(clean, perturbed)

    trainer.perturb_batch, trainer.purifier_step = counting_perturb, recording_step
    for _ in range(2):
        trainer.train_step(torch.rand(4, 3, 32, 32))
    assert len(crafted) == 2 and len(seen) == 6  # crafted once per batch, used three times
    assert all(torch.equal(image, crafted[0]) for image in seen[:3])
    assert all(torch.equal(image, crafted[1]) for image in seen[3:])
    assert adam_steps(trainer.purifier_optimizer) == {6}
    assert adam_steps(trainer.critic_optimizer) == {6}
    assert trainer.iteration == 2  # an iteration is still one batch of the data stream


def test_k_updates_equal_k_manual_purifier_then_critic_steps_on_the_same_batch(tiny_config, tmp_path):
    clean = torch.rand(4, 3, 32, 32)
    trainer = Trainer(tiny_config(updates_per_batch=2, val=[], out=str(tmp_path / "k2")))
    reference = Trainer(tiny_config(val=[], out=str(tmp_path / "manual")))  # same seed: the same initial networks
    losses = trainer.train_step(clean)
    perturbed = reference.perturb_batch(clean, 0)
    purified, first = reference.purifier_step(clean, perturbed)
    first.update(reference.critic_step(clean, purified))
    purified, _ = reference.purifier_step(clean, perturbed)
    reference.critic_step(clean, purified)
    assert losses == first  # the first update's losses, on a batch not trained on yet
    for network, expected in ((trainer.purifier, reference.purifier), (trainer.critic, reference.critic)):
        for a, b in zip(network.state_dict().values(), expected.state_dict().values()):
            assert torch.equal(a, b)


def test_one_update_per_batch_is_algorithm_2(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    assert trainer.config.updates_per_batch == 1
    trainer.train_step(torch.rand(4, 3, 32, 32))
    assert adam_steps(trainer.purifier_optimizer) == {1} and adam_steps(trainer.critic_optimizer) == {1}


def test_a_run_may_resume_with_more_updates_per_batch_and_counts_cpu_time_across_resumes(tiny_config, tmp_path, caplog):
    Trainer(tiny_config(out=str(tmp_path / "run"), iterations=2, checkpoint_every=2)).train()
    resumed = Trainer(tiny_config(out=str(tmp_path / "run"), iterations=4, checkpoint_every=2, updates_per_batch=2, resume=True))
    assert "differ from the checkpoint" not in caplog.text
    before = resumed.cpu_seconds_before
    assert before > 0
    resumed.train()
    assert adam_steps(resumed.purifier_optimizer) == {2 + 2 * 2}
    records = resumed.metrics.records()
    cpu = [r["cpu_seconds"] for r in records if r["split"] == "train"]
    assert cpu == sorted(cpu) and cpu[2] > before  # cumulative: the resumed records continue the first process's


@pytest.mark.parametrize("value", [0, -1])
def test_updates_per_batch_below_one_is_refused(tiny_config, value):
    with pytest.raises(InputError, match=f"updates_per_batch must be >= 1, got {value}"):
        Trainer(tiny_config(updates_per_batch=value))
