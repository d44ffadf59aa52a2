"""Argument checks shared by the attacks: each names the offending value and the accepted range."""

from __future__ import annotations

import torch

from nrp.errors import InputError


def check_images(x: torch.Tensor) -> None:
    """``x`` must be a floating ``(B, C, H, W)`` batch in [0, 1] (normalisation belongs in the model)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"expected floating-point images of shape (B, C, H, W), got {shape}")
    if x.numel():
        low, high = (value.item() for value in torch.aminmax(x.detach()))
        if low < 0 or high > 1:
            raise InputError(
                f"images must lie in [0, 1] (normalisation belongs inside the model), got values in [{low:.4g}, {high:.4g}]"
            )


def check_labels(labels: torch.Tensor, batch: int, name: str) -> None:
    """``labels`` must be integer class indices of shape ``(batch,)``."""
    if not isinstance(labels, torch.Tensor) or labels.shape != (batch,) or labels.is_floating_point():
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise InputError(f"{name} must be integer class indices of shape ({batch},), got {shape}")


def check_eps(eps: float, name: str = "eps") -> None:
    """An L-inf budget in [0, 1] units."""
    if not 0.0 <= eps <= 1.0:
        raise InputError(f"{name} must be in [0, 1] ([0, 255] on the command line), got {eps}")


def check_steps(steps: int, name: str = "steps") -> None:
    """A whole number of iterations, at least 1."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"{name} must be an integer >= 1, got {steps!r}")


def check_step_size(step_size: float) -> None:
    """A step in [0, 1] units; 0 is allowed so that an eps = 0 FGSM is the identity."""
    if not 0.0 <= step_size <= 1.0:
        raise InputError(f"step_size must be in [0, 1] ([0, 255] on the command line), got {step_size}")


def check_probability(prob: float, name: str) -> None:
    """A probability in [0, 1]."""
    if not 0.0 <= prob <= 1.0:
        raise InputError(f"{name} must be in [0, 1], got {prob}")


def check_diversity_scale(scale: float) -> None:
    """DIM's resize range as a share of the side: > 0 and not 1 (< 1 shrinks, > 1 enlarges)."""
    if not (scale > 0.0 and scale != 1.0):
        raise InputError(f"diversity_scale must be > 0 and != 1 (e.g. 0.9 or 330/299), got {scale}")


def check_kernel_size(size: int | None) -> None:
    """An odd whole kernel size >= 1 (odd, so the smoothed gradient stays centred), or None for no smoothing."""
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise InputError(f"ti_kernel must be an odd integer >= 1 (or None), got {size!r}")
