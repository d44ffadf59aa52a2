"""A differentiable approximation of JPEG compression, for attackers who need gradients through it.

Follows the baseline codec step by step, as libjpeg (Pillow) runs it: 8-bit RGB -> YCbCr (JFIF), chroma
subsampling by 2x2 (or 2x1) averaging, 8x8 orthonormal DCT, quantisation with the standard tables scaled to
``quality`` as ``jpeg_set_quality`` does, and the inverse with libjpeg's "fancy" (triangular) chroma
upsampling. Rounding to integers is straight-through (exact forward, identity backward) except at the
quantisation step, where ``rounding="cubic"`` selects Shin & Song's ``round(t) + (t - round(t))**3``.
The forward result is close to, not equal to, the real codec's (libjpeg's integer DCTs differ slightly).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nrp.defenses._checks import check_choice, check_images, check_int
from nrp.defenses.jpeg import DEFAULT_QUALITY, DEFAULT_SUBSAMPLING, SUBSAMPLINGS

ROUNDINGS = ("straight_through", "cubic")

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural (row-major) order.
LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
) + ((99,) * 8,) * 4

# (vertical, horizontal) chroma subsampling factors.
_FACTORS = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2)}


def quantization_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's luminance and chrominance tables at ``quality`` (1..100), two ``(8, 8)`` float64 tensors.

    ``jpeg_quality_scaling``: ``scale = 5000 / q`` below 50, else ``200 - 2 q``; each entry becomes
    ``(base * scale + 50) // 100`` clipped to 1..255 (baseline JPEG), as Pillow writes them.

    Example:
        >>> int(quantization_tables(50)[0][0, 0]), int(quantization_tables(75)[0][0, 0])
        (16, 8)
    """
    check_int("quality", quality, 1, 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    tables = []
    for base in (LUMA_TABLE, CHROMA_TABLE):
        scaled = [[min(max((value * scale + 50) // 100, 1), 255) for value in row] for row in base]
        tables.append(torch.tensor(scaled, dtype=torch.float64))
    return tables[0], tables[1]


def dct_matrix(dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix ``D`` (``(8, 8)``): a block's coefficients are ``D @ b @ D.T``."""
    k = torch.arange(8, dtype=torch.float64).view(8, 1)
    n = torch.arange(8, dtype=torch.float64).view(1, 8)
    matrix = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] /= math.sqrt(2)
    return matrix.to(dtype=dtype, device=device)


def jpeg_differentiable(
    x: torch.Tensor,
    quality: int = DEFAULT_QUALITY,
    subsampling: str = DEFAULT_SUBSAMPLING,
    rounding: str = "straight_through",
) -> torch.Tensor:
    """Differentiable JPEG encode + decode of every image, close to :func:`~nrp.defenses.jpeg_compress`.

    Args:
        x: images ``(B, 3, H, W)`` in [0, 1], any size (padded to whole blocks by edge replication, as
            libjpeg does, then cropped back).
        quality: libjpeg quality, 1..100.
        subsampling: ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"`` (Pillow's default).
        rounding: how the quantised DCT coefficients are rounded: ``"straight_through"`` (forward exact,
            gradient 1) or ``"cubic"`` (Shin & Song, 2017: forward ``round(t) + (t - round(t))**3``).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], float32 (float64 for float64 input): the codec is computed in float32 at
        least, with autocast turned off, since half-precision rounding of 0..255 samples (bfloat16 keeps 8
        bits) would be an error as large as the approximation's own. Gradients reach ``x`` (non-zero almost
        everywhere).

    Example:
        >>> x = torch.rand(1, 3, 16, 16, requires_grad=True)
        >>> jpeg_differentiable(x, quality=75).sum().backward()
        >>> bool(x.grad.abs().sum() > 0)
        True
    """
    check_images(x, channels=3)
    check_int("quality", quality, 1, 100)
    check_choice("subsampling", subsampling, SUBSAMPLINGS)
    check_choice("rounding", rounding, ROUNDINGS)
    with torch.autocast(x.device.type, enabled=False):
        return _jpeg_in_full_precision(x.to(torch.promote_types(x.dtype, torch.float32)), quality, subsampling, rounding)


def _jpeg_in_full_precision(x: torch.Tensor, quality: int, subsampling: str, rounding: str) -> torch.Tensor:
    height, width = x.shape[-2:]
    fh, fw = _FACTORS[subsampling]
    luma_table, chroma_table = (table.to(dtype=x.dtype, device=x.device) for table in quantization_tables(quality))
    round_coefficients = _round_cubic if rounding == "cubic" else _round_straight_through

    pixels = _round_straight_through(x.clamp(0.0, 1.0) * 255.0)  # the codec sees 8-bit samples
    ycbcr = _round_straight_through(_rgb_to_ycbcr(pixels))
    ycbcr = F.pad(ycbcr, (0, (-width) % (8 * fw), 0, (-height) % (8 * fh)), mode="replicate")  # whole MCUs
    luma, chroma = ycbcr[:, :1], ycbcr[:, 1:]
    if (fh, fw) != (1, 1):
        chroma = _round_straight_through(F.avg_pool2d(chroma, (fh, fw)))

    luma = _block_codec(luma, luma_table, round_coefficients)[..., :height, :width]
    chroma = _block_codec(chroma, chroma_table, round_coefficients)
    if (fh, fw) != (1, 1):
        # libjpeg's fancy upsampling = bilinear with half-pixel centres and replicated edges
        chroma = chroma[..., : -(-height // fh), : -(-width // fw)]
        chroma = F.interpolate(chroma, scale_factor=(fh, fw), mode="bilinear", align_corners=False)
        chroma = _round_straight_through(chroma)
    chroma = chroma[..., :height, :width]
    rgb = _round_straight_through(_ycbcr_to_rgb(torch.cat([luma, chroma], dim=1)))
    return rgb.clamp(0.0, 255.0) / 255.0


def _block_codec(plane: torch.Tensor, table: torch.Tensor, round_coefficients: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """DCT, quantise, dequantise and inverse-DCT every 8x8 block of ``(B, k, H, W)`` samples in 0..255."""
    batch, planes, height, width = plane.shape
    dct = dct_matrix(plane.dtype, plane.device)
    blocks = (plane - 128.0).reshape(batch, planes, height // 8, 8, width // 8, 8).transpose(3, 4)  # (..., 8, 8)
    coefficients = dct @ blocks @ dct.T
    coefficients = round_coefficients(coefficients / table) * table
    samples = _round_straight_through(dct.T @ coefficients @ dct + 128.0).clamp(0.0, 255.0)
    return samples.transpose(3, 4).reshape(batch, planes, height, width)


def _rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """JFIF full-range conversion (libjpeg's ``jccolor.c``), 0..255 in and out."""
    r, g, b = rgb.unbind(dim=1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128.0
    return torch.stack([y, cb, cr], dim=1)


def _ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """The inverse conversion (libjpeg's ``jdcolor.c``), 0..255 in and out."""
    y, cb, cr = ycbcr[:, 0], ycbcr[:, 1] - 128.0, ycbcr[:, 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136286 * cb - 0.714136286 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], dim=1)


def _round_straight_through(t: torch.Tensor) -> torch.Tensor:
    return t + (torch.round(t) - t).detach()


def _round_cubic(t: torch.Tensor) -> torch.Tensor:
    rounded = torch.round(t).detach()
    return rounded + (t - rounded) ** 3


class JpegDifferentiable(nn.Module):
    """:func:`jpeg_differentiable` as a module.

    Shapes:
        ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` in [0, 1], differentiable.
    """

    def __init__(self, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING,
                 rounding: str = "straight_through") -> None:
        super().__init__()
        self.quality = check_int("quality", quality, 1, 100)
        self.subsampling = check_choice("subsampling", subsampling, SUBSAMPLINGS)
        self.rounding = check_choice("rounding", rounding, ROUNDINGS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg_differentiable(x, self.quality, self.subsampling, self.rounding)

    def extra_repr(self) -> str:
        return f"quality={self.quality}, subsampling={self.subsampling!r}, rounding={self.rounding!r}"
