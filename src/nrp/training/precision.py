"""The precision of a training run's forward passes: bfloat16 only where the device computes it natively.

``auto`` picks bfloat16 autocast on CUDA devices of compute capability 8.0 or newer (A100, H100, RTX 30xx and
later, which have bfloat16 tensor cores), float16 autocast with a gradient scaler on older CUDA devices (V100,
T4: the paper's generation of GPUs, where bfloat16 is emulated and slower than float32), and float32 on CPUs.
Whatever the precision, the losses are computed in float32 (:mod:`nrp.training.losses`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

from nrp.errors import InputError

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32", "fp64")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None, "fp64": None}
# Compute capability from which NVIDIA GPUs have bfloat16 tensor cores (Ampere).
NATIVE_BF16_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` in ``bf16``, ``fp16``, ``fp32``, ``fp64`` on a device type, and why.

    ``fp64`` (never chosen by ``auto``) keeps networks and data in float64: slow, for checking that two runs
    compute the same thing, since in float32 Adam turns the rounding noise on the critic's logit biases (whose
    gradient under the shift-invariant relativistic loss is exactly zero) into full-size steps.
    """

    name: str
    device_type: str
    reason: str = ""

    @property
    def parameter_dtype(self) -> torch.dtype:
        """The dtype of the networks' parameters and of the batches they read."""
        return torch.float64 if self.name == "fp64" else torch.float32

    @property
    def uses_scaler(self) -> bool:
        """float16 needs loss scaling so that small gradients do not flush to zero."""
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of the forward passes (a no-op for ``fp32``)."""
        dtype = _DTYPES[self.name]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=dtype)

    def attack_autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of crafting x': bfloat16 as the networks, else float32.

        SSP takes the sign of an unscaled input gradient, which float16 could flush to zero; bfloat16 has
        float32's range.
        """
        return self.autocast() if self.name == "bf16" else contextlib.nullcontext()

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for ``fp16`` only (otherwise its calls pass straight through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.uses_scaler)


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """The precision ``requested`` (one of :data:`PRECISIONS`) means on ``device``.

    ``auto``: see the module docstring. ``bf16`` is refused on CUDA devices below compute capability 8.0
    (emulated there); on a CPU it runs CPU autocast (for tests: slower than float32 on most CPUs).
    ``fp16`` needs a CUDA device.

    Raises:
        InputError: an unknown name, or a precision the device cannot run.
    """
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision '{requested}'; known: {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        native = capability >= NATIVE_BF16_CAPABILITY
        where = f"{torch.cuda.get_device_name(device)}, compute capability {capability[0]}.{capability[1]}"
        if requested == "auto":
            return Precision("bf16" if native else "fp16", "cuda", f"auto on {where}")
        if requested == "bf16" and not native:
            raise InputError(f"bf16 is emulated on the {where} (native from 8.0); use --precision fp16 or fp32")
        return Precision(requested, "cuda", f"requested, on {where}")
    if requested == "fp16":
        raise InputError(f"fp16 training needs a CUDA device, not {device.type}; use --precision fp32 (or bf16)")
    if requested == "auto":
        return Precision("fp32", device.type, f"auto on {device.type}")
    return Precision(requested, device.type, f"requested, on {device.type}")
