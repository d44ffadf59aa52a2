"""The configuration of a training run: one dataclass whose fields are the ``nrp train`` flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from nrp.attacks.checks import check_kernel_size
from nrp.config_files import read_config_mapping
from nrp.errors import InputError
from nrp.training.perturbations import PERTURBATIONS
from nrp.training.precision import PRECISIONS
from nrp.units import check_pixel_budget


@dataclass
class TrainConfig:
    """Everything ``nrp train`` needs; a YAML/JSON file sets these keys and flags override them.

    Pixel quantities (``eps``, ``ssp_step_size``, ``noise_std``) are in 0-255 units, as in the paper.
    Defaults follow Section 4.1: batch 16, 128x128 crops of images resized to 480, Adam at 1e-4 for both
    networks, loss weights alpha=5e-3 (adversarial), gamma=1e-2 (pixel), lambda=1 (feature), eps 16, and one
    purifier and one critic update per crafted batch (``updates_per_batch`` > 1 is an extension: see
    :meth:`~nrp.training.trainer.Trainer.train_step`). ``retain_heap`` keeps freed memory in the process
    (:func:`~nrp.training.allocator.retain_freed_memory`); it changes speed only, never results.
    ``channels_last`` stores networks and batches channels-last (NHWC), faster for CPU convolutions, with
    results equal up to float rounding. ``max_cpu_seconds`` stops the run, with a checkpoint, once the training
    process has spent that much CPU time (user + system, summed over resumes): runs on a shared machine are
    compared at equal CPU time that way; a resume with a larger budget continues the run.
    """

    data: list[str] = field(default_factory=list)
    out: str = ""
    val: list[str] = field(default_factory=list)
    val_images: int = 8
    purifier: str = "nrp"
    width: int | None = None
    blocks: int | None = None
    growth: int | None = None
    init_purifier: str | None = None
    critic_width: int = 64
    iterations: int = 100_000
    max_cpu_seconds: float | None = None
    batch_size: int = 16
    updates_per_batch: int = 1
    crop: int = 128
    resize: int = 480
    perturbation: str = "ssp"
    eps: float = 16.0
    ssp_steps: int = 10
    ssp_step_size: float = 2.55
    ssp_distance: str = "mse"
    ssp_ti_kernel: int | None = None
    ssp_ti_fraction: float = 0.5
    ssp_di_layer: str | None = None
    ssp_di_fraction: float = 0.5
    clean_fraction: float = 0.0
    noise_std: float = 16.0
    fgsm_model: str | None = None
    fgsm_weights: str | None = None
    loss_weights: list[float] = field(default_factory=lambda: [5e-3, 1e-2, 1.0])
    gan: str = "relativistic"
    lr: float = 1e-4
    critic_lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    backbone: str = "vgg16"
    layer: str = "conv3_3"
    backbone_weights: str | None = None
    seed: int = 0
    workers: int | None = None
    device: str = "auto"
    precision: str = "auto"
    sync_batchnorm: bool = True
    retain_heap: bool = True
    channels_last: bool = False
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    val_every: int = 1000
    log_every: int = 10
    resume: bool = False

    def validate(self) -> None:
        """Refuse values that cannot work, naming the field and the accepted range."""
        if not self.data:
            raise InputError("no training data: give at least one folder with --data")
        if not self.out:
            raise InputError("no run folder: give --out RUN_DIR")
        for name in ("iterations", "batch_size", "updates_per_batch", "crop", "resize", "ssp_steps", "checkpoint_every", "val_every", "log_every", "keep_checkpoints", "critic_width"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop > self.resize:
            raise InputError(f"crop {self.crop} is larger than resize {self.resize}: crops are cut from the resized image")
        check_pixel_budget("eps", self.eps)
        if self.perturbation not in PERTURBATIONS:
            raise InputError(f"unknown perturbation '{self.perturbation}'; known: {', '.join(PERTURBATIONS)}")
        if self.perturbation == "fgsm" and not self.fgsm_model:
            raise InputError("the fgsm perturbation attacks a classifier: name it with --fgsm-model")
        if self.ssp_di_layer and self.perturbation != "ssp":
            raise InputError(f"ssp_di_layer adds a share of SSP images and needs the ssp perturbation, not '{self.perturbation}'")
        if len(self.loss_weights) != 3 or any(w < 0 for w in self.loss_weights):
            raise InputError(f"loss_weights must be three numbers >= 0 (adversarial, pixel, feature), got {self.loss_weights}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.max_cpu_seconds is not None and not self.max_cpu_seconds > 0:
            raise InputError(f"max_cpu_seconds must be > 0, got {self.max_cpu_seconds}")
        if self.workers is not None and self.workers < 0:
            raise InputError(f"workers must be >= 0, got {self.workers}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision '{self.precision}'; known: {', '.join(PRECISIONS)}")
        check_kernel_size(self.ssp_ti_kernel)
        for name in ("ssp_ti_fraction", "ssp_di_fraction", "clean_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def purifier_arguments(self) -> dict[str, int]:
        """Constructor arguments of the purifier that were set (the rest keep the architecture's defaults)."""
        arguments = {"width": self.width, "blocks": self.blocks, "growth": self.growth}
        if self.purifier != "nrp":
            arguments.pop("growth")
        return {key: value for key, value in arguments.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for checkpoints and logs."""
        return dataclasses.asdict(self)


def config_fields() -> dict[str, dataclasses.Field]:
    """The fields of :class:`TrainConfig` by name."""
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a dict of known :class:`TrainConfig` keys."""
    return read_config_mapping(path, config_fields())


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any]) -> TrainConfig:
    """Defaults, then the config file, then every flag that was given (flags win)."""
    values = {**file_values, **{key: value for key, value in flag_values.items() if value is not None}}
    for key in ("data", "val"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    config = TrainConfig(**values)
    config.validate()
    return config
