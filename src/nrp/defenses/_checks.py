"""Argument checks shared by the defenses: each raises :class:`~nrp.errors.ParameterError` naming the value and range."""

from __future__ import annotations

import math

import torch

from nrp.errors import InputError, InputTooSmallError, ParameterError


def check_images(x: torch.Tensor, channels: int | None = None) -> None:
    """``x`` must be a floating-point ``(B, C, H, W)`` tensor (with ``channels`` channels when given)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"expected images of shape (B, C, H, W), got {shape}")
    if not x.is_floating_point():
        raise InputError(f"expected floating-point images in [0, 1], got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"expected {channels} channels, got images of shape {tuple(x.shape)}")


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` must be an ``int`` in ``[low, high]`` (no upper bound when ``high`` is None)."""
    accepted = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ParameterError(f"{name} must be an integer in {accepted}, got {value!r}", name)
    return value


def check_odd(name: str, value: object) -> int:
    """``value`` must be an odd ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ParameterError(f"{name} must be an odd integer >= 1, got {value!r}", name)
    return value


def check_float(name: str, value: object, low: float, high: float = math.inf, *, low_open: bool = False) -> float:
    """``value`` must be a finite real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a number in {interval}, got {value!r}", name)
    if value > high or value < low or (low_open and value == low):
        raise ParameterError(f"{name} must be a number in {interval}, got {value!r}", name)
    return float(value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}; got {value!r}", name)
    return value  # type: ignore[return-value]


def check_padding(window: int, x: torch.Tensor) -> None:
    """A symmetric padding of ``window // 2`` pixels needs images at least that large."""
    if window // 2 > min(x.shape[-2:]):
        raise InputTooSmallError(f"window {window} is too large for images of size {tuple(x.shape[-2:])}; "
                         f"window // 2 must be <= {min(x.shape[-2:])}")
