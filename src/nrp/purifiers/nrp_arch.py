"""The NRP purifier network: a trunk of Residual-in-Residual Dense Blocks (RRDB) at full resolution.

Layout and parameter names follow the authors' published ``NRP.pth`` (Naseer et al., CVPR 2020), so that
checkpoint loads unchanged: ``conv_first`` -> ``RRDB_trunk.{i}.RDB{1,2,3}.conv{1..5}`` -> ``trunk_conv``.
There is no global skip connection, no upsampling and no output activation: :class:`~nrp.purifiers.Purifier`
clamps the output to [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

# Both residual branches are scaled down before the identity is added, as in ESRGAN's RRDB.
RESIDUAL_SCALE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions; each sees the block input and all earlier outputs.

    Args:
        width: channels of the block input and output (``nf``).
        growth: channels each of conv1-conv4 adds to the dense concatenation (``gc``).
    """

    def __init__(self, width: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(width + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(width + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(width + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(width + 4 * growth, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.act(self.conv1(x))
        x2 = self.act(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.act(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.act(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Three residual dense blocks in sequence, wrapped in a scaled residual connection."""

    def __init__(self, width: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(width, growth)
        self.RDB2 = ResidualDenseBlock(width, growth)
        self.RDB3 = ResidualDenseBlock(width, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * RESIDUAL_SCALE + x


class NRP(nn.Module):
    """Neural Representation Purifier with an RRDB trunk (the authors' ``NRP``).

    With the defaults (``width=64, blocks=23, growth=32``) it has 16,550,275 parameters and the state-dict
    keys of the published ``NRP.pth``.

    Args:
        width: feature channels of the trunk (``nf``).
        blocks: number of RRDB blocks (``nb``).
        growth: dense growth channels inside each block (``gc``).

    Shapes:
        ``(B, 3, H, W) -> (B, 3, H, W)``, any ``H, W``. The output is not clamped.
    """

    def __init__(self, width: int = 64, blocks: int = 23, growth: int = 32) -> None:
        super().__init__()
        self.width, self.blocks, self.growth = width, blocks, growth
        self.conv_first = nn.Conv2d(3, width, 3, padding=1)
        self.RRDB_trunk = nn.Sequential(*(RRDB(width, growth) for _ in range(blocks)))
        self.trunk_conv = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk_conv(self.RRDB_trunk(self.conv_first(x)))
