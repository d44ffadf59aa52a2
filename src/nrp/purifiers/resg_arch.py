"""The NRP_resG purifier network: plain residual blocks without batch-norm at full resolution.

Layout and parameter names follow the authors' published ``NRP_resG.pth``: ``conv_first`` ->
``recon_trunk.{i}.conv{1,2}`` -> ``conv_last``. No global skip connection, no output activation.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x)))`` with 3x3 convolutions and no normalisation."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class NRPResG(nn.Module):
    """The lighter purifier of the authors' code (``NRP_resG``): a trunk of residual blocks.

    With the defaults (``width=64, blocks=23``) it has 1,702,211 parameters and the state-dict keys of the
    published ``NRP_resG.pth``.

    Args:
        width: feature channels of the trunk (``nf``).
        blocks: number of residual blocks (``nb``).

    Shapes:
        ``(B, 3, H, W) -> (B, 3, H, W)``, any ``H, W``. The output is not clamped.
    """

    def __init__(self, width: int = 64, blocks: int = 23) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.conv_first = nn.Conv2d(3, width, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        self.recon_trunk = nn.Sequential(*(ResidualBlockNoBN(width) for _ in range(blocks)))
        self.conv_last = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.recon_trunk(self.lrelu(self.conv_first(x))))
