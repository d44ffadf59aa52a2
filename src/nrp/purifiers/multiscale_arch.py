"""NRP-MS: a multi-scale purifier without a skip connection from its input to its output.

Section 3.3 of the paper builds the purifier without the input-to-output skip that restoration networks
usually have, because "a direct skip connection can potentially reintroduce harmful noise patterns".
NRP-Lite (``x + f(x)``) breaks that rule and works at one scale, while the transfer attacks that it fails on
(TI, DIM) leave low-frequency perturbations. This network regenerates the image from features at three
scales instead: an encoder of residual blocks at 1/2, 1/4 and 1/8 of the input resolution, and a decoder
that brings the coarse features back up and adds them to the finer ones (inner skips between feature maps,
never the input pixels), then unfolds the finest features into the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nrp.errors import InputError
from nrp.purifiers.lite_arch import ResidualBlock


class Level(nn.Sequential):
    """``count`` residual blocks (conv3x3 - ReLU - conv3x3, added to their input) of ``width`` channels."""

    def __init__(self, width: int, count: int) -> None:
        super().__init__(*(ResidualBlock(width) for _ in range(count)))


class MultiScalePurifier(nn.Module):
    """Purifier ``g(x)`` at ``levels`` scales, with no path that copies ``x`` to the output.

    Layout (defaults ``width=48, blocks=2, levels=3``)::

        x (3, H, W) -> 2x2 fold (12, H/2, W/2) -> conv3x3 -> 48 ch
          encoder  level 0: 2 blocks, 48 ch, H/2  -- conv3x3 stride 2 -->
                   level 1: 3 blocks, 96 ch, H/4  -- conv3x3 stride 2 -->
                   level 2: 4 blocks, 192 ch, H/8
          decoder  conv1x1 + 2x pixel shuffle, added to level 1's output -> 3 blocks, 96 ch
                   conv1x1 + 2x pixel shuffle, added to level 0's output -> 2 blocks, 48 ch
          conv3x3 -> 12 ch -> 2x2 unfold -> (3, H, W)

    Level ``i`` has ``width * 2**i`` channels and ``blocks + i`` residual blocks in the encoder and again in
    the decoder. The coarsest level's receptive field spans a few hundred pixels, wide enough for TI's 15x15
    smoothing and DIM's resizing. Default PyTorch initialisation: an untrained network is not the identity
    (its output is not ``x``), so training must learn to produce the image, not only a correction. Any size
    works: the input is edge-padded to a multiple of ``2**levels`` and the output cropped back.

    Args:
        width: channels of the finest level.
        blocks: residual blocks of the finest level (each coarser level has one more).
        levels: number of scales (1 is a single-scale network at half resolution).

    Shapes:
        ``(B, 3, H, W) -> (B, 3, H, W)``. The output is not clamped.

    Example:
        >>> net = MultiScalePurifier(width=8, blocks=1, levels=2)
        >>> net(torch.rand(1, 3, 15, 17)).shape
        torch.Size([1, 3, 15, 17])
    """

    def __init__(self, width: int = 48, blocks: int = 2, levels: int = 3) -> None:
        super().__init__()
        if width < 1 or blocks < 0 or levels < 1:
            raise InputError(f"need width >= 1, blocks >= 0 and levels >= 1, got {width}, {blocks} and {levels}")
        self.width, self.blocks, self.levels = width, blocks, levels
        channels = [width * 2**level for level in range(levels)]
        self.head = nn.Conv2d(12, width, 3, padding=1)
        self.encoder = nn.ModuleList(Level(channels[level], blocks + level) for level in range(levels))
        self.down = nn.ModuleList(nn.Conv2d(channels[level], channels[level + 1], 3, stride=2, padding=1)
                                  for level in range(levels - 1))
        self.up = nn.ModuleList(nn.Conv2d(channels[level + 1], channels[level] * 4, 1) for level in range(levels - 1))
        self.decoder = nn.ModuleList(Level(channels[level], blocks + level) for level in range(levels - 1))
        self.tail = nn.Conv2d(width, 12, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.levels
        pad_h, pad_w = -height % multiple, -width % multiple
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        features = F.relu(self.head(F.pixel_unshuffle(padded, 2)))  # (B, width, H/2, W/2)
        skips = []
        for level, blocks in enumerate(self.encoder):
            features = blocks(features)
            if level < self.levels - 1:
                skips.append(features)
                features = F.relu(self.down[level](features))  # half the size, twice the channels
        for level in reversed(range(self.levels - 1)):
            features = skips[level] + F.pixel_shuffle(self.up[level](features), 2)
            features = self.decoder[level](features)
        return F.pixel_shuffle(self.tail(features), 2)[..., :height, :width]
