"""Training checkpoints: self-describing, written atomically, found again for ``--resume``.

A checkpoint is a ``.pth`` file the purifier loaders read directly (architecture, arguments and the
purifier's ``state_dict``), with the rest of the training state beside it: critic, optimisers, iteration,
RNG state and the run's configuration. Files are named ``iteration_<N>.pth``; they are written to a hidden
temporary name and renamed, so a file with that name is always complete, and a process killed while
writing leaves only a hidden ``.iteration_<N>.pth.*.tmp`` that nothing ever picks up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nrp.checkpoints import Checkpoint, load_torch_payload, write_checkpoint
from nrp.errors import CheckpointError

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^iteration_(\d+)\.pth$")


@dataclass
class TrainingState:
    """What a resumed run needs, besides the configuration it re-reads."""

    iteration: int
    purifier: dict[str, torch.Tensor]
    critic: dict[str, torch.Tensor]
    purifier_optimizer: dict[str, Any]
    critic_optimizer: dict[str, Any]
    rng: dict[str, Any]
    config: dict[str, Any]
    scalers: dict[str, Any] = field(default_factory=dict)  # float16 gradient scalers' states (empty otherwise)
    cpu_seconds: float = 0.0  # CPU time (user + system) the training process spent up to here, over all resumes


def checkpoint_path(folder: Path, iteration: int) -> Path:
    """``folder/iteration_<N>.pth`` with N zero-padded so names sort by iteration."""
    return folder / f"iteration_{iteration:08d}.pth"


def save_training_checkpoint(
    folder: Path,
    state: TrainingState,
    architecture: str,
    arguments: dict[str, Any],
    critic_arguments: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``state`` atomically and delete all but the newest ``keep`` checkpoints."""
    path = checkpoint_path(folder, state.iteration)
    extra = {
        "iteration": state.iteration,
        "critic": state.critic,
        "critic_arguments": critic_arguments,
        "optimizers": {"purifier": state.purifier_optimizer, "critic": state.critic_optimizer},
        "rng": state.rng,
        "config": state.config,
        "scalers": state.scalers,
        "cpu_seconds": state.cpu_seconds,
    }
    write_checkpoint(Checkpoint(state.purifier, architecture, arguments), path, extra=extra)
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temporary files never match)."""
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir() if (match := CHECKPOINT_NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def load_training_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> TrainingState:
    """Read a checkpoint written by :func:`save_training_checkpoint` (safe loader, one-line errors)."""
    payload = load_torch_payload(path, map_location)
    try:
        return TrainingState(
            iteration=payload["iteration"],
            purifier=payload["state_dict"],
            critic=payload["critic"],
            purifier_optimizer=payload["optimizers"]["purifier"],
            critic_optimizer=payload["optimizers"]["critic"],
            rng=payload["rng"],
            config=payload["config"],
            scalers=payload.get("scalers", {}),
            cpu_seconds=payload.get("cpu_seconds", 0.0),
        )
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a training checkpoint of nrp (no {error})") from None


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The global torch RNG states (CPU, and CUDA when training there)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Put back what :func:`capture_rng` saved."""
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


DAMAGED_SUFFIX = ".damaged"


def newest_intact_checkpoint(folder: Path, take_intact: bool = False) -> tuple[Path, TrainingState] | None:
    """Verify the newest checkpoint of ``folder`` before a resume; return the one to resume from (``None``: none).

    A damaged newest checkpoint (CRC or SHA-256 mismatch, unreadable) is reported in one line that names the
    newest intact one, unless ``take_intact``: then every damaged newer file is renamed to ``*.pth.damaged``
    (kept for inspection, never picked up again) so the run resumes from the newest intact one.

    Raises:
        CheckpointError: the newest checkpoint is damaged and ``take_intact`` is off, or no checkpoint is intact.
    """
    existing = list_checkpoints(folder)
    damaged: list[tuple[Path, CheckpointError]] = []
    for path in reversed(existing):
        try:
            state = load_training_checkpoint(path)
        except CheckpointError as error:
            damaged.append((path, error))
            continue
        if damaged and not take_intact:
            raise CheckpointError(
                f"{damaged[0][1]}; the newest intact checkpoint is {path.name}: pass --resume-intact to resume from it "
                "(the damaged file is kept as *.damaged)"
            )
        for bad, error in damaged:
            logger.warning("%s; moved aside to %s", error, bad.name + DAMAGED_SUFFIX)
            bad.rename(bad.with_name(bad.name + DAMAGED_SUFFIX))
        return path, state
    if damaged:
        raise CheckpointError(f"{damaged[0][1]}; no intact checkpoint is left in {folder}: start a new --out")
    return None
