"""The generator of CDA (Naseer et al., NeurIPS 2019), with the key layout of the authors' released weights.

A ResNet image-to-image generator (Johnson et al.'s, as CDA's code builds it), ``ngf=64``:

* ``block1``: reflection pad 3, Conv 3->64 7x7 (no bias), BN, ReLU — keys ``block1.1``, ``block1.2``;
* ``block2``, ``block3``: Conv 3x3 stride 2 (64->128, 128->256, no bias), BN, ReLU — keys ``.0``, ``.1``;
* ``resblock1`` ... ``resblock6``: ``x + block(x)``, ``block`` = reflection pad 1, Conv 256->256 3x3 (no bias),
  BN, ReLU, Dropout(0.5), reflection pad 1, Conv, BN — keys ``resblockN.block.1/2/6/7``;
* ``upsampl1``, ``upsampl2``: ConvTranspose 3x3 stride 2, padding 1, output padding 1 (256->128, 128->64,
  no bias), BN, ReLU;
* ``blockf``: reflection pad 3, Conv 64->3 7x7 (with bias) — key ``blockf.1``;
* for Inception generators (trained at 300 px, used at 299) ``crop`` drops the last column and the first row;
* output ``(tanh(x) + 1) / 2`` in [0, 1].

7,841,411 parameters. Shapes: ``(B, 3, H, W)`` in [0, 1], ``H`` and ``W`` multiples of 4 -> the same shape
(``H - 1``, ``W - 1`` with the Inception crop).
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 64  # ngf
RESIDUAL_BLOCKS = 6


def _down(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True))


def _up(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """``x + block(x)``: two reflection-padded 3x3 convolutions with batch norm, ReLU and dropout 0.5 between."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class CDAGenerator(nn.Module):
    """CDA's perturbation generator (see the module docstring for the layout).

    Args:
        inception: crop one row and one column off the output, as the authors' Inception-v3 generators do.

    Example:
        >>> CDAGenerator()(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, inception: bool = False) -> None:
        super().__init__()
        self.inception = inception
        self.block1 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, WIDTH, 7, bias=False),
                                    nn.BatchNorm2d(WIDTH), nn.ReLU(inplace=True))
        self.block2 = _down(WIDTH, 2 * WIDTH)
        self.block3 = _down(2 * WIDTH, 4 * WIDTH)
        for index in range(1, RESIDUAL_BLOCKS + 1):
            self.add_module(f"resblock{index}", ResidualBlock(4 * WIDTH))
        self.upsampl1 = _up(4 * WIDTH, 2 * WIDTH)
        self.upsampl2 = _up(2 * WIDTH, WIDTH)
        self.blockf = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(WIDTH, 3, 7))
        self.crop = nn.ConstantPad2d((0, -1, -1, 0), 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(x)))  # (B, 256, H/4, W/4)
        for index in range(1, RESIDUAL_BLOCKS + 1):
            x = getattr(self, f"resblock{index}")(x)
        x = self.blockf(self.upsampl2(self.upsampl1(x)))  # (B, 3, H, W)
        if self.inception:
            x = self.crop(x)
        return (torch.tanh(x) + 1) / 2
