"""Training on a CUDA device (skipped without one; ``benchmarks/gpu_check.py`` runs these on a GPU)."""

from __future__ import annotations

import math

import pytest
import torch

from nrp.defenses import jpeg_differentiable
from nrp.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("precision", ["auto", "fp16", "fp32"])
def test_cuda_train_step_in_each_precision(tiny_config, precision):
    trainer = Trainer(tiny_config(device="cuda", precision=precision, val=[]))
    dtypes = []
    trainer.purifier.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    losses = trainer.train_step(torch.rand(4, 3, 32, 32))
    assert all(math.isfinite(value) for value in losses.values())
    expected = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[trainer.precision.name]
    assert dtypes == [expected]
    assert trainer.purifier_scaler.is_enabled() == (trainer.precision.name == "fp16")


def test_cuda_auto_precision_is_bf16_exactly_from_compute_capability_8(tiny_config):
    trainer = Trainer(tiny_config(device="cuda", val=[]))
    native = torch.cuda.get_device_capability() >= (8, 0)
    assert trainer.precision.name == ("bf16" if native else "fp16")


def test_cuda_jpeg_differentiable_stays_float32_under_autocast():
    x = torch.rand(2, 3, 32, 32, device="cuda")
    expected = jpeg_differentiable(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        result = jpeg_differentiable(x)
    assert result.dtype == torch.float32 and torch.equal(result, expected)


def test_cuda_resume_restores_the_weights_exactly(tiny_config, tmp_path):
    Trainer(tiny_config(out=str(tmp_path / "run"), device="cuda", iterations=2, val=[])).train()
    first = Trainer(tiny_config(out=str(tmp_path / "run"), device="cuda", iterations=4, resume=True, val=[]))
    saved = torch.load(tmp_path / "run" / "checkpoints" / "iteration_00000002.pth", map_location="cuda", weights_only=True)
    assert first.iteration == 2
    assert all(torch.equal(value, saved["state_dict"][key]) for key, value in first.purifier.state_dict().items())
