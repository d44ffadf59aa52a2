"""Bit-depth reduction (Xu et al., "Feature Squeezing", NDSS 2018)."""

from __future__ import annotations

import torch
from torch import nn

from nrp.defenses._checks import check_images, check_int

DEFAULT_BITS = 4


def reduce_bit_depth(x: torch.Tensor, bits: int = DEFAULT_BITS) -> torch.Tensor:
    """Quantise every value to the nearest of ``2 ** bits`` evenly spaced levels in [0, 1].

    ``round(x * (2**bits - 1)) / (2**bits - 1)`` with round-half-to-even, after clamping to [0, 1]; 8 bits
    keep the 256 levels of an 8-bit image. The gradient is zero almost everywhere (use BPDA to attack it).

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        bits: 1..8; 1 bit maps every value to 0 or 1.

    Returns:
        ``(B, C, H, W)`` with values in ``{k / (2**bits - 1)}``.

    Example:
        >>> reduce_bit_depth(torch.tensor([0.2, 0.6, 0.9]).view(1, 1, 1, 3), bits=1).flatten()
        tensor([0., 1., 1.])
    """
    check_images(x)
    check_int("bits", bits, 1, 8)
    levels = 2**bits - 1
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


class BitDepthReduction(nn.Module):
    """:func:`reduce_bit_depth` as a module.

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C, H, W)`` in [0, 1].
    """

    def __init__(self, bits: int = DEFAULT_BITS) -> None:
        super().__init__()
        self.bits = check_int("bits", bits, 1, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reduce_bit_depth(x, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"
