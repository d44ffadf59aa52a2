"""What ``nrp train`` checks before any work: value ranges of flags and config keys, and a resume's fit.

Every numeric field of :class:`~nrp.training.config.TrainConfig` has a :class:`~nrp.validation.Range` here;
a bad value is named as its flag (``--lr``) or, when it came from the config file, as ``FILE: lr``, and is a
usage error (exit code 2), raised before the run folder is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nrp.errors import InputError, UsageError
from nrp.training.checkpointing import newest_intact_checkpoint
from nrp.training.config import TrainConfig, build_config
from nrp.training.critic import MIN_SIZE as CRITIC_MIN_SIZE
from nrp.validation import (
    COUNT, FINITE, FRACTION, NON_NEGATIVE, NON_NEGATIVE_INT, PIXELS, POSITIVE, SEED, Range, check_finite_values, check_output_folder,
)

TRAIN_RANGES: dict[str, Range] = {
    "val_images": NON_NEGATIVE_INT, "width": COUNT, "blocks": COUNT, "growth": COUNT, "critic_width": COUNT,
    "iterations": COUNT, "max_cpu_seconds": POSITIVE, "batch_size": COUNT, "updates_per_batch": COUNT, "crop": COUNT, "resize": COUNT, "eps": PIXELS, "ssp_steps": COUNT,
    "ssp_step_size": POSITIVE, "ssp_ti_fraction": FRACTION, "ssp_di_fraction": FRACTION, "clean_fraction": FRACTION,
    "noise_std": NON_NEGATIVE, "lr": POSITIVE, "critic_lr": POSITIVE, "seed": SEED, "workers": NON_NEGATIVE_INT,
    "checkpoint_every": COUNT, "keep_checkpoints": COUNT, "val_every": COUNT, "log_every": COUNT,
}
LIST_RANGES: dict[str, Range] = {"loss_weights": NON_NEGATIVE, "betas": FINITE}
# Fields that fix the networks' shapes: a resume with other values cannot load the checkpoint.
ARCHITECTURE_FIELDS = ("purifier", "width", "blocks", "growth", "critic_width")
CHECKPOINT_FOLDER = "checkpoints"  # Trainer.checkpoint_dir, relative to the run folder


def checked_train_config(file_values: dict[str, Any], flags: dict[str, Any], config_file: str | None) -> TrainConfig:
    """:func:`~nrp.training.config.build_config` with every value range-checked first; any refusal is a UsageError.

    The crop must be at least the critic's smallest input (32 px: five stride-2 convolutions) when the
    adversarial loss is on; the VGG/EfficientNet feature layers and the purifiers accept any crop that size.
    """
    given = {key: value for key, value in flags.items() if value is not None}
    values = {**file_values, **given}
    names = {key: f"--{key.replace('_', '-')}" if key in given else f"{config_file}: {key}" for key in values}
    for key, value in values.items():
        if value is None:
            continue
        if key in TRAIN_RANGES:
            TRAIN_RANGES[key].check(names[key], value)
        if key in LIST_RANGES and isinstance(value, list):
            for item in value:
                LIST_RANGES[key].check(names[key], item)
    check_finite_values(values, names)
    try:
        config = build_config(file_values, flags)
    except UsageError:
        raise
    except InputError as error:
        raise UsageError(str(error)) from None
    if config.loss_weights[0] > 0 and config.crop < CRITIC_MIN_SIZE:
        raise UsageError(f"{names.get('crop', 'crop')} must be at least {CRITIC_MIN_SIZE} (the critic halves it five "
                         f"times), got {config.crop}")
    return config


def check_run_folder(config: TrainConfig) -> None:
    """The run folder and its checkpoint folder can be created and written (neither is an existing file)."""
    check_output_folder(config.out)
    check_output_folder(Path(config.out) / CHECKPOINT_FOLDER)


def check_resume(config: TrainConfig, flags: dict[str, Any], take_intact: bool) -> None:
    """Before a ``--resume``: verify the newest checkpoint and that the requested networks match the run's.

    Raises:
        CheckpointError: the newest checkpoint is damaged (naming the newest intact one) unless ``take_intact``.
        UsageError: a network-shaping setting differs from the run's, named in one line.
    """
    found = newest_intact_checkpoint(Path(config.out) / CHECKPOINT_FOLDER, take_intact=take_intact)
    if found is None:
        return
    stored, requested = found[1].config, config.to_dict()
    for key in ARCHITECTURE_FIELDS:
        if key in stored and stored[key] != requested[key]:
            flag = f"--{key.replace('_', '-')}"
            given = f"{flag} {requested[key]}" if flags.get(key) is not None else f"the default {key} {requested[key]}"
            raise UsageError(f"{given} differs from the run's {stored[key]} in {config.out}; "
                             f"pass {flag} {stored[key]}, or start a new --out")
