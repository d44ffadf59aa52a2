"""The two transformations of transfer attacks: DIM's random resize-and-pad and TI's Gaussian gradient smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nrp.errors import InputTooSmallError

# TI's kernel spans +-3 standard deviations (Dong et al.'s code, torchattacks' nsig=3): sigma = (size - 1) / 6 px.
KERNEL_SPAN_SIGMAS = 3.0
# Up to this height/width the smoothing runs as two banded matrix products, which BLAS makes 4-10x faster than a
# depthwise conv on a CPU (measured for 224-1024 px, kernels 3-15); beyond it the dense bands cost too much.
MATMUL_MAX_SIZE = 1024


def diversity_bounds(size: int, scale: float) -> tuple[int, int]:
    """``(low, high)``: DIM draws a resized side in ``[low, high)`` and pads it to ``high``.

    ``scale < 1`` shrinks: sides in ``[int(size * scale), size)``, padded back to ``size`` (torchattacks'
    ``resize_rate=0.9``). ``scale > 1`` enlarges: sides in ``[size, int(size * scale))``, padded to
    ``int(size * scale)`` (Xie et al.'s 299 -> [299, 330) -> 330 is ``scale=330/299``).
    """
    bound = int(size * scale)
    low, high = (bound, size) if scale < 1 else (size, bound)
    if low >= high:
        raise InputTooSmallError(f"diversity_scale {scale} leaves no room to resize a side of {size} px; use a scale further from 1")
    return low, high


def input_diversity(x: torch.Tensor, prob: float, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """DIM's transformation T(x; p) (Xie et al., CVPR 2019, Eq. 1): with probability ``prob``, resize and pad.

    One draw per call for the whole batch, as in Xie et al.'s and torchattacks' code: a side ``rnd`` in
    :func:`diversity_bounds`, a bilinear resize to ``rnd`` (``align_corners=False``), then zero padding to the
    upper bound at a random offset. The draws come in torchattacks' order (side, top pad, left pad, then the
    coin), so with ``generator=None`` and the same global seed both make the same choices. Non-square images
    keep their aspect ratio (the height follows the drawn width).

    Args:
        x: ``(B, C, H, W)`` images in [0, 1].
        prob: probability of transforming (0.7 in the paper's Appendix F).
        scale: resize range, see :func:`diversity_bounds` (0.9: output keeps the input size).
        generator: random generator (CPU or the generator's device); ``None`` uses the global one.

    Returns:
        ``x`` itself (untransformed, probability ``1 - prob``) or ``(B, C, H', W')`` with ``H' = high``.

    Example:
        >>> input_diversity(torch.rand(1, 3, 20, 20), prob=1.0, scale=0.9).shape
        torch.Size([1, 3, 20, 20])
    """
    height, width = x.shape[-2:]
    low_w, high_w = diversity_bounds(width, scale)
    low_h, high_h = diversity_bounds(height, scale)
    new_w = _randint(low_w, high_w, generator)
    new_h = new_w if height == width else min(max(round(new_w * height / width), low_h), high_h - 1)
    top = _randint(0, high_h - new_h, generator)
    left = _randint(0, high_w - new_w, generator)
    device = generator.device if generator is not None else "cpu"
    if torch.rand(1, generator=generator, device=device).item() >= prob:
        return x
    resized = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    return F.pad(resized, (left, high_w - new_w - left, top, high_h - new_h - top))


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(low, high, (1,), generator=generator, device=device).item())


def gaussian_kernel1d(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """TI's 1-D Gaussian ``(size,)``, summing to 1: ``size`` samples of N(0, 1) over [-3, 3].

    Its outer product with itself is Dong et al.'s 2-D kernel (``gkern(size, nsig=3)``), so the standard
    deviation is ``(size - 1) / 6`` pixels: 7/3 px for the default 15, 1 px for 7. ``size=1`` is ``[1.0]``.
    Computed in float64, then cast.
    """
    positions = torch.linspace(-KERNEL_SPAN_SIGMAS, KERNEL_SPAN_SIGMAS, size, dtype=torch.float64)
    kernel = torch.exp(-0.5 * positions**2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def smooth_gradient(gradient: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """TI's ``W * g`` (Dong et al., CVPR 2019, Eq. 8): each channel convolved with the 2-D Gaussian ``outer(k, k)``.

    Zero padding keeps the size ("SAME"), as in the authors' and torchattacks' depthwise convolution. The
    kernel is separable, so the 2-D convolution is a product with two banded matrices (``band_h @ g @ band_w``);
    equal to the depthwise convolution up to float rounding.

    Args:
        gradient: ``(B, C, H, W)``.
        kernel: ``(k,)`` 1-D kernel from :func:`gaussian_kernel1d`, odd ``k``, same dtype and device.

    Returns:
        ``(B, C, H, W)``.

    Example:
        >>> g = torch.zeros(1, 1, 5, 5); g[0, 0, 2, 2] = 1.0
        >>> k = gaussian_kernel1d(3)
        >>> torch.allclose(smooth_gradient(g, k)[0, 0, 1:4, 1:4], torch.outer(k, k))
        True
    """
    height, width = gradient.shape[-2:]
    if max(height, width) > MATMUL_MAX_SIZE:
        return smooth_gradient_conv(gradient, kernel)
    return band_matrix(height, kernel).T @ (gradient @ band_matrix(width, kernel))


def smooth_gradient_conv(gradient: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """:func:`smooth_gradient` as one depthwise 2-D convolution (used for images larger than 1024 px)."""
    channels, size = gradient.shape[1], kernel.numel()
    weight = torch.outer(kernel, kernel).expand(channels, 1, size, size)
    return F.conv2d(gradient, weight, padding=size // 2, groups=channels)


def band_matrix(n: int, kernel: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` matrix ``M`` with ``M[j, i] = kernel[j - i + r]`` for ``|j - i| <= r = k // 2``, else 0.

    ``g @ M`` correlates every row of ``g`` with ``kernel`` under zero padding: ``(g @ M)[i] = sum_j g[j] M[j, i]``.
    """
    radius = kernel.numel() // 2
    index = torch.arange(n, device=kernel.device)
    offset = index.view(-1, 1) - index.view(1, -1)  # j - i
    inside = offset.abs() <= radius
    return torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], kernel.new_zeros(()))
