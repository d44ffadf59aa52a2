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
    return device
