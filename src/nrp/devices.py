"""Turning a device name from the command line into a ``torch.device``, refusing unavailable ones early."""

from __future__ import annotations

import torch

from nrp.errors import InputError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; an unknown or unavailable device raises :class:`InputError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' requested but CUDA is not available; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device '{name}' requested but Apple's MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device '{name}' cannot run nrp (it holds no data or is not supported); use cpu, cuda or auto")
    return device
