"""The discriminator C_phi that the relativistic adversarial loss (Eq. 7) is measured with.

Section 3.3 of Naseer et al. (CVPR 2020): "based on VGG ... five convolutional blocks containing convolutional
layers followed by batch-norm and leaky-relu and then a fully connected layer". The layout follows the
VGG-style discriminator of ESRGAN/BasicSR, where the authors' training was built: each block is a 3x3 stride-1
convolution and a 4x4 stride-2 convolution (which halves the resolution), each followed by batch-norm and
LeakyReLU(0.2), except the very first convolution, which has a bias and no batch-norm. An adaptive average pool
to 4x4 (the identity at the default 128x128 crop) lets the same critic score any crop of at least 32 px.
"""

from __future__ import annotations

import torch
from torch import nn

# Negative slope of every LeakyReLU, as in ESRGAN's discriminator.
NEGATIVE_SLOPE = 0.2
# Feature channels of the five blocks, in units of ``width``.
CHANNEL_MULTIPLIERS = (1, 2, 4, 8, 8)
# Spatial size of the map the classifier reads; a 128 px crop reaches it after five halvings.
POOLED_SIZE = 4
# Five stride-2 convolutions each take floor(H / 2); below 32 px the last one would have nothing to read.
MIN_SIZE = 2 ** len(CHANNEL_MULTIPLIERS)
# Width of the hidden fully connected layer (ESRGAN's value).
HIDDEN_FEATURES = 100


def _conv_bn_act(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> list[nn.Module]:
    """Convolution (no bias: the batch-norm that follows has one) + batch-norm + LeakyReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(NEGATIVE_SLOPE),
    ]


class Critic(nn.Module):
    """VGG-style discriminator C_phi (Section 3.3): one real-vs-purified logit per image.

    Five blocks ``conv3x3/1 -> BN -> LeakyReLU -> conv4x4/2 -> BN -> LeakyReLU`` with ``width * (1, 2, 4, 8, 8)``
    channels (the first 3x3 convolution has a bias and no batch-norm), an ``AdaptiveAvgPool2d(4)``, then
    ``Linear(8 * width * 16 -> 100) -> LeakyReLU -> Linear(100 -> 1)``. With ``width=64`` it has 14,499,401
    parameters.

    Args:
        width: channels of the first block; the others scale with it (64 in ESRGAN; tests use tiny values).

    Shapes:
        ``(B, 3, H, W) -> (B,)`` raw logits (no sigmoid), for pixels in [0, 1] and any ``H, W >= 32``.
        Before pooling the map is ``(B, 8 * width, H // 32, W // 32)`` when ``H, W`` are multiples of 32.

    Example:
        >>> Critic(width=4)(torch.rand(2, 3, 64, 48)).shape
        torch.Size([2])
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"critic width must be a positive integer, got {width}")
        self.width = width
        channels = [width * m for m in CHANNEL_MULTIPLIERS]
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels[0], 3, stride=1, padding=1, bias=True),
            nn.LeakyReLU(NEGATIVE_SLOPE),
            *_conv_bn_act(channels[0], channels[0], 4, 2),
        ]
        for in_channels, out_channels in zip(channels[:-1], channels[1:]):
            layers += _conv_bn_act(in_channels, out_channels, 3, 1)
            layers += _conv_bn_act(out_channels, out_channels, 4, 2)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(POOLED_SIZE)
        self.classifier = nn.Sequential(
            nn.Linear(channels[-1] * POOLED_SIZE * POOLED_SIZE, HIDDEN_FEATURES),
            nn.LeakyReLU(NEGATIVE_SLOPE),
            nn.Linear(HIDDEN_FEATURES, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"critic expects images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[2] < MIN_SIZE or x.shape[3] < MIN_SIZE:
            raise ValueError(
                f"critic needs images of at least {MIN_SIZE}x{MIN_SIZE} px (five stride-2 convolutions), "
                f"got {x.shape[2]}x{x.shape[3]}"
            )
        x = self.features(x)  # (B, 8w, H/32, W/32)
        x = self.pool(x)  # (B, 8w, 4, 4)
        return self.classifier(x.flatten(1)).squeeze(1)  # (B,)
