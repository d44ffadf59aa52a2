"""Training stops with one clear line, before the bad update, when a loss or a gradient is not finite."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.errors import TrainingDivergedError
from nrp.training import Trainer
from nrp.training.checkpointing import list_checkpoints, load_training_checkpoint


def poison_from(trainer: Trainer, iteration: int) -> None:
    """Make the perturbation return NaN images from global iteration ``iteration`` (counted from 1) on."""
    perturb = trainer.perturb

    def poisoned(clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        perturbed = perturb(clean, noise)
        return perturbed * math.nan if trainer.iteration + 1 >= iteration else perturbed

    trainer.perturb = poisoned


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_config):
    config = tiny_config(iterations=6, checkpoint_every=2, val=[])
    trainer = Trainer(config)
    poison_from(trainer, 3)
    with pytest.raises(TrainingDivergedError, match=r"iteration 3: the purifier loss is not finite; .*iteration_00000002\.pth"):
        trainer.train()
    folder = Path(config.out) / "checkpoints"
    assert [p.name for p in list_checkpoints(folder)] == ["iteration_00000002.pth"]
    state = load_training_checkpoint(folder / "iteration_00000002.pth")
    assert all(torch.isfinite(v).all() for v in state.purifier.values() if v.is_floating_point())
    assert all(torch.isfinite(p).all() for p in trainer.purifier.parameters())  # the bad update was never applied


def test_a_nan_gradient_with_a_finite_loss_stops_training(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    next(trainer.purifier.parameters()).register_hook(lambda gradient: gradient * math.nan)
    with pytest.raises(TrainingDivergedError, match="iteration 1: the purifier gradient is not finite; .*no checkpoint was written yet"):
        trainer.train_step(torch.rand(4, 3, 32, 32))


def test_the_command_line_reports_it_in_one_line(tiny_config, monkeypatch, capsys, tmp_path):
    original = Trainer.perturb_batch

    def poisoned(self, clean, iteration, validation=False):
        return original(self, clean, iteration, validation) * (math.nan if iteration >= 1 else 1.0)

    monkeypatch.setattr(Trainer, "perturb_batch", poisoned)
    config = tiny_config(iterations=3, checkpoint_every=1, val=[])
    args = ["train", "--data", *config.data, "--out", config.out, "--width", "8", "--blocks", "1", "--growth", "4", "--critic-width", "4",
            "--iterations", "3", "--batch-size", "4", "--crop", "32", "--resize", "40", "--ssp-steps", "1", "--layer", config.layer,
            "--backbone-weights", config.backbone_weights, "--workers", "0", "--checkpoint-every", "1"]
    assert main(args) == exit_codes.ERROR
    err = capsys.readouterr().err
    assert err.startswith("nrp: error: iteration 2: the purifier loss is not finite") and err.count("\n") == 1
    assert [p.name for p in list_checkpoints(Path(config.out) / "checkpoints")] == ["iteration_00000001.pth"]
