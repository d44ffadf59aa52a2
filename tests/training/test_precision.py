"""The precision policy: bf16 only where native, fp16 with a scaler on older GPUs, float32 losses, bf16 steps on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from nrp.errors import InputError
from nrp.training import Trainer
from nrp.training.losses import LossWeights, purifier_objective
from nrp.training.precision import resolve_precision


@pytest.fixture
def gpu(monkeypatch):
    """``set(capability)``: pretend the CUDA device has that compute capability."""

    def set_capability(capability: tuple[int, int]) -> torch.device:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a test GPU")
        return torch.device("cuda", 0)

    return set_capability


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_takes_bf16_from_compute_capability_8_and_fp16_with_a_scaler_before(gpu, capability, expected):
    precision = resolve_precision("auto", gpu(capability))
    assert precision.name == expected and precision.uses_scaler == (expected == "fp16")
    assert f"{capability[0]}.{capability[1]}" in precision.reason


def test_bf16_is_refused_where_it_is_emulated(gpu):
    with pytest.raises(InputError, match="bf16 is emulated on the a test GPU, compute capability 7.0"):
        resolve_precision("bf16", gpu((7, 0)))


def test_cpu_defaults_to_fp32_and_refuses_fp16():
    assert resolve_precision("auto", torch.device("cpu")).name == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")).name == "bf16"
    with pytest.raises(InputError, match="fp16 training needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))


def test_losses_are_float32_for_bfloat16_inputs_under_autocast():
    generator = torch.Generator().manual_seed(0)
    clean, purified = (torch.rand(2, 3, 8, 8, generator=generator).bfloat16() for _ in range(2))
    features = [torch.rand(2, 4, 4, 4, generator=generator).bfloat16() for _ in range(2)]
    logits = [torch.randn(2, generator=generator).bfloat16() for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = purifier_objective(LossWeights(), clean=clean, purified=purified, clean_features=features[0],
                                    purified_features=features[1], real_logits=logits[0], fake_logits=logits[1])
    assert all(value.dtype == torch.float32 for value in losses.values())
    reference = purifier_objective(LossWeights(), clean=clean.float(), purified=purified.float(), clean_features=features[0].float(),
                                   purified_features=features[1].float(), real_logits=logits[0].float(), fake_logits=logits[1].float())
    assert all(torch.equal(losses[key], reference[key]) for key in losses)


@pytest.fixture(scope="module")
def squeezenet_weights(tmp_path_factory):
    import torchvision

    path = tmp_path_factory.mktemp("squeezenet") / "squeezenet1_1.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize("perturbation", ["ssp", "gaussian", "fgsm"])
def test_a_whole_train_step_under_cpu_bf16_autocast(tiny_config, squeezenet_weights, perturbation):
    config = tiny_config(perturbation=perturbation, precision="bf16", fgsm_model="squeezenet1_1", fgsm_weights=str(squeezenet_weights), val=[])
    trainer = Trainer(config)
    dtypes = []
    trainer.purifier.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    losses = trainer.train_step(torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert dtypes == [torch.bfloat16]  # the purifier really ran in bf16
    assert all(math.isfinite(value) for value in losses.values()) and losses["critic_loss"] > 0
    assert all(p.dtype == torch.float32 for p in trainer.purifier.parameters())  # master weights stay float32
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters()))
