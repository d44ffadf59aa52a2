"""NRP-Lite: a small residual purifier that works at half resolution, sized for training on a CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, added to the block's input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class NRPLite(nn.Module):
    """Purifier ``x + f(x)``: ``f`` folds each 2x2 pixel patch into channels, runs residual blocks, unfolds.

    The authors' NRP (23 RRDB blocks at full resolution, 16.6M parameters) needs days of GPU time. This network
    keeps what the purifier's job needs, a receptive field wide enough to see a perturbation's structure (about
    ``8 * blocks + 6`` pixels) and capacity to model natural images, at a quarter of the per-pixel cost of a
    full-resolution network of the same width: the 2x2 fold (pixel unshuffle) is lossless, so no detail is lost.
    Its last convolution starts at zero, so an untrained NRP-Lite is the identity and training only has to learn
    the correction. Any size works: the fold pads an odd height or width by repeating the edge and crops back.

    Args:
        width: channels of the residual blocks.
        blocks: number of residual blocks.

    Shapes:
        ``(B, 3, H, W) -> (B, 3, H, W)``. The output is not clamped.

    Example:
        >>> net = NRPLite(width=8, blocks=1)
        >>> x = torch.rand(1, 3, 15, 16)
        >>> bool(torch.equal(net(x), x))  # identity before training
        True
    """

    def __init__(self, width: int = 64, blocks: int = 8) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.head = nn.Conv2d(12, width, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.tail = nn.Conv2d(width, 12, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        padded = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate") if height % 2 or width % 2 else x
        folded = F.pixel_unshuffle(padded, 2)
        correction = F.pixel_shuffle(self.tail(self.body(F.relu(self.head(folded)))), 2)
        return (padded + correction)[..., :height, :width]
