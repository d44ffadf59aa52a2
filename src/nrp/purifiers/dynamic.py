"""The dynamic defense of the authors' purify script: a random draw around the input before purifying."""

from __future__ import annotations

import torch

DEFAULT_NOISE_STD = 0.05
DEFAULT_NOISE_EPS = 16 / 255


def dynamic_noise(
    x: torch.Tensor,
    std: float = DEFAULT_NOISE_STD,
    eps: float = DEFAULT_NOISE_EPS,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add Gaussian noise, project into the L-inf ball of radius ``eps`` around ``x``, clamp to [0, 1].

    One draw per call (per image of the batch), as in the authors' code: ``x + N(0, 1) * std``.

    Args:
        x: images ``(B, 3, H, W)`` in [0, 1].
        std: standard deviation of the noise, [0, 1] units.
        eps: radius of the L-inf ball the noisy image is projected into, [0, 1] units.
        generator: random generator for reproducible draws (on any device; noise is moved to ``x``'s).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], with ``|result - x| <= eps`` everywhere.
    """
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    noisy = x + noise * std
    return torch.minimum(torch.maximum(noisy, x - eps), x + eps).clamp(0.0, 1.0)
