"""Two CPU processes under torchrun (gloo) train like one process with the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nrp.purifiers import load_network
from nrp.training import Trainer


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nrp.cli.main", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def flags(config) -> list[str]:
    return [
        "train", "--data", *config.data, "--out", config.out, "--purifier", config.purifier, "--width", str(config.width),
        "--blocks", str(config.blocks), "--growth", str(config.growth), "--critic-width", str(config.critic_width),
        "--iterations", str(config.iterations), "--batch-size", str(config.batch_size), "--crop", str(config.crop),
        "--resize", str(config.resize), "--ssp-steps", str(config.ssp_steps), "--layer", config.layer,
        "--backbone-weights", config.backbone_weights, "--workers", "0", "--checkpoint-every", "100",
        "--loss-weights", ",".join(map(str, config.loss_weights)), "--device", "cpu",
    ]


@pytest.mark.parametrize("loss_weights", [[0.0, 1e-2, 1.0], [5e-3, 1e-2, 1.0]], ids=["no-critic", "with-critic"])
def test_two_gloo_processes_train_and_write_one_checkpoint(tiny_config, tmp_path, loss_weights):
    config = tiny_config(out=str(tmp_path / "ddp"), iterations=3, loss_weights=loss_weights, val=[])
    result = torchrun(flags(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir())
    assert checkpoints == ["iteration_00000003.pth"]  # rank 0 alone writes, once
    distributed = load_network(tmp_path / "ddp" / "purifier.safetensors")

    single = Trainer(tiny_config(out=str(tmp_path / "single"), iterations=3, loss_weights=loss_weights, val=[]))
    single.train()
    difference = max((a - b).abs().max().item() for a, b in zip(single.purifier.state_dict().values(), distributed.state_dict().values()))
    if loss_weights[0] == 0:
        # Same samples, crops and noise per global batch, gradients averaged: equal up to float summation order.
        assert difference < 1e-5
    else:
        # Each process normalises the critic's batch-norm and relativistic means over its own half batch.
        assert difference < 1e-2
