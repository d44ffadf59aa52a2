"""``max_cpu_seconds``: a run stops with a checkpoint once its CPU budget is spent, and resumes past it."""

from pathlib import Path

import pytest
import torch

from nrp.errors import InputError
from nrp.training import Trainer
from nrp.training.checkpointing import list_checkpoints, load_training_checkpoint

SECONDS_PER_ITERATION = 10.0


@pytest.fixture
def iteration_clock(monkeypatch):
    """A CPU clock that advances exactly 10 s per finished iteration, so the stopping point is known."""
    monkeypatch.setattr(Trainer, "cpu_seconds", lambda self: SECONDS_PER_ITERATION * self.iteration)


def test_a_run_stops_at_the_first_iteration_past_its_budget_with_a_checkpoint(tiny_config, iteration_clock):
    config = tiny_config(iterations=100, checkpoint_every=50, val_every=50, max_cpu_seconds=25.0)
    final = Trainer(config).train()
    run = Path(config.out)
    assert final == run / "purifier.safetensors" and final.exists()
    # 30 s >= 25 s after iteration 3, not earlier: that iteration is checkpointed although 3 is not a multiple of 50.
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iteration_00000003.pth"]
    assert load_training_checkpoint(run / "checkpoints" / "iteration_00000003.pth").cpu_seconds == 30.0
    assert (run / "validation" / "iteration_00000003.png").exists()


def test_a_spent_budget_trains_no_further_and_a_larger_one_continues_as_one_run(tiny_config, iteration_clock, tmp_path):
    Trainer(tiny_config(out=str(tmp_path / "split"), iterations=6, checkpoint_every=6, max_cpu_seconds=25.0)).train()
    again = Trainer(tiny_config(out=str(tmp_path / "split"), iterations=6, checkpoint_every=6, max_cpu_seconds=25.0, resume=True))
    again.train()
    assert again.iteration == 3
    resumed = Trainer(tiny_config(out=str(tmp_path / "split"), iterations=6, checkpoint_every=6, max_cpu_seconds=1e9, resume=True))
    resumed.train()
    whole = Trainer(tiny_config(out=str(tmp_path / "whole"), iterations=6, checkpoint_every=6))
    whole.train()
    assert resumed.iteration == whole.iteration == 6
    for a, b in zip(whole.purifier.state_dict().values(), resumed.purifier.state_dict().values()):
        assert torch.equal(a, b)


def test_without_a_budget_the_run_goes_to_its_iterations(tiny_config, iteration_clock):
    trainer = Trainer(tiny_config(iterations=4))
    trainer.train()
    assert trainer.iteration == 4


@pytest.mark.parametrize("budget", [0.0, -5.0])
def test_a_budget_that_is_not_positive_is_refused(tiny_config, budget):
    with pytest.raises(InputError, match="max_cpu_seconds must be > 0"):
        tiny_config(max_cpu_seconds=budget).validate()
