"""Gaussian smoothing, a separable convolution with a normalised, truncated Gaussian kernel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nrp.defenses._checks import check_float, check_images, check_odd, check_padding
from nrp.defenses._padding import symmetric_pad

DEFAULT_SIGMA = 1.0


def default_kernel_size(sigma: float) -> int:
    """``2 * ceil(3 * sigma) + 1``: the kernel reaches three standard deviations on each side."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_kernel1d(sigma: float, kernel_size: int, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The 1-D kernel ``exp(-t**2 / (2 sigma**2))`` at ``t = -(k // 2) .. k // 2``, summing to 1, shape ``(k,)``."""
    radius = kernel_size // 2
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def gaussian_blur(x: torch.Tensor, sigma: float = DEFAULT_SIGMA, kernel_size: int | None = None) -> torch.Tensor:
    """Smooth each channel with an isotropic Gaussian of standard deviation ``sigma`` pixels.

    The kernel is separable, normalised to sum 1 (so a constant image is unchanged and the total intensity
    is preserved away from the borders) and truncated to ``kernel_size`` taps; borders are padded
    symmetrically (SciPy's ``mode="reflect"``). It equals ``scipy.ndimage.gaussian_filter(x, sigma,
    mode="reflect", truncate=(kernel_size // 2) / sigma)`` on the last two axes. Differentiable.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        sigma: standard deviation, pixels (> 0).
        kernel_size: odd number of taps; ``None`` for :func:`default_kernel_size` (``2 * ceil(3 sigma) + 1``).
            ``kernel_size // 2 <= min(H, W)``.

    Returns:
        ``(B, C, H, W)`` in [0, 1].

    Example:
        >>> gaussian_blur(torch.full((1, 3, 8, 8), 0.25), sigma=1.5).unique()
        tensor([0.2500])
    """
    check_images(x)
    check_float("sigma", sigma, 0.0, low_open=True)
    kernel_size = default_kernel_size(sigma) if kernel_size is None else check_odd("kernel_size", kernel_size)
    check_padding(kernel_size, x)
    channels = x.shape[1]
    kernel = gaussian_kernel1d(sigma, kernel_size, x.dtype, x.device)
    padded = symmetric_pad(x, kernel_size // 2)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, kernel_size, 1)
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, kernel_size)
    return F.conv2d(F.conv2d(padded, vertical, groups=channels), horizontal, groups=channels).clamp(0.0, 1.0)


class GaussianBlur(nn.Module):
    """:func:`gaussian_blur` as a module.

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C, H, W)`` in [0, 1].
    """

    def __init__(self, sigma: float = DEFAULT_SIGMA, kernel_size: int | None = None) -> None:
        super().__init__()
        self.sigma = check_float("sigma", sigma, 0.0, low_open=True)
        self.kernel_size = default_kernel_size(sigma) if kernel_size is None else check_odd("kernel_size", kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.sigma, self.kernel_size)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, kernel_size={self.kernel_size}"
