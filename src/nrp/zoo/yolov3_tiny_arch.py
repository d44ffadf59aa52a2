"""YOLOv3-tiny (Redmon and Farhadi, 2018) as PyTorch modules: the network of darknet's ``yolov3-tiny.cfg``.

Only ``nn.Module``s live here; reading the weights is :mod:`nrp.zoo.darknet`, letterboxing and non-maximum
suppression are :mod:`nrp.zoo.detector`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nrp.zoo.darknet import DarknetLayer

NUM_CLASSES = 80
# Anchor (width, height) in input pixels, and which three each head uses (the cfg's ``mask``).
ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
HEAD_ANCHORS = ((3, 4, 5), (0, 1, 2))  # the stride-32 head first, as in the cfg
LEAKY_SLOPE = 0.1
# Darknet normalises by the standard deviation plus this, not by sqrt(variance + eps) as torch does
# (pjreddie/darknet src/blas.c, normalize_cpu: (x - mean) / (sqrt(variance) + .000001f)).
DARKNET_BN_EPS = 1e-6


class DarknetBatchNorm2d(nn.BatchNorm2d):
    """Darknet's inference batch normalisation: ``(x - mean) / (sqrt(var) + 1e-6) * gamma + beta`` per channel.

    ``nn.BatchNorm2d`` divides by ``sqrt(var + eps)`` instead, which differs from Darknet's value by several
    percent on channels of small variance. The parameters and buffers are ``nn.BatchNorm2d``'s (so the weights
    reader and state dicts are unchanged); in training mode it is ``nn.BatchNorm2d`` (this project never trains
    the detector). Shapes: ``(B, C, H, W)`` -> the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        def channel(values: torch.Tensor) -> torch.Tensor:
            return values[:, None, None]

        # normalize_cpu, then scale_bias and add_bias, as darknet's forward_batchnorm_layer runs them
        normalised = (x - channel(self.running_mean)) / channel(self.running_var.sqrt() + DARKNET_BN_EPS)
        return normalised * channel(self.weight) + channel(self.bias)


class ConvBlock(nn.Module):
    """Darknet's ``[convolutional]``: a ``size x size`` convolution ("same" padding), BN and leaky ReLU 0.1,
    or, for a detection head, a plain convolution with a bias and a linear output."""

    def __init__(self, channels: int, filters: int, size: int, head: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, filters, size, padding=size // 2, bias=head)
        self.norm = None if head else DarknetBatchNorm2d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.norm is None else F.leaky_relu(self.norm(x), LEAKY_SLOPE)


class YoloV3Tiny(nn.Module):
    """YOLOv3-tiny for 416x416 (any multiple of 32) RGB inputs in [0, 1], no mean/std.

    ``forward`` returns the two heads' raw maps: ``(B, 3 * 85, H/32, W/32)`` and ``(B, 3 * 85, H/16, W/16)``,
    each anchor's 85 channels being ``tx, ty, tw, th``, objectness and 80 class logits (:func:`decode`).

    Shapes (416 input): 416 -conv16,pool-> 208 -32,pool-> 104 -64,pool-> 52 -128,pool-> 26 -256 (kept for
    the second head), pool-> 13 -512, pool stride 1-> 13 -1024 -256 (kept) -512 -head 255 @13; the kept
    256 map -128, upsampled to 26, concatenated with the 26x26 256 map -256 -head 255 @26.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        outputs = 3 * (5 + num_classes)
        widths = (16, 32, 64, 128, 256, 512)
        self.backbone = nn.ModuleList(ConvBlock(c, f, 3) for c, f in zip((3, *widths[:-1]), widths))
        self.conv7 = ConvBlock(512, 1024, 3)
        self.conv8 = ConvBlock(1024, 256, 1)
        self.conv9 = ConvBlock(256, 512, 3)
        self.head1 = ConvBlock(512, outputs, 1, head=True)
        self.conv11 = ConvBlock(256, 128, 1)
        self.conv12 = ConvBlock(384, 256, 3)
        self.head2 = ConvBlock(256, outputs, 1, head=True)

    def darknet_layers(self) -> list[DarknetLayer]:
        """The convolutions in the order of ``yolov3-tiny.cfg``, as the weights file stores them."""
        blocks = [*self.backbone, self.conv7, self.conv8, self.conv9, self.head1, self.conv11, self.conv12, self.head2]
        return [(block.conv, block.norm) for block in blocks]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for index, block in enumerate(self.backbone):
            x = block(x)
            if index == 4:
                route = x  # layer 8 of the cfg: 256 channels at stride 16
            if index < 5:
                x = F.max_pool2d(x, 2, 2)
            else:  # darknet's size-2 stride-1 max-pool pads right and bottom (with -inf: replicate is the same)
                x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, 1)
        kept = self.conv8(self.conv7(x))
        first = self.head1(self.conv9(kept))
        up = F.interpolate(self.conv11(kept), scale_factor=2, mode="nearest")
        second = self.head2(self.conv12(torch.cat([up, route], dim=1)))
        return first, second


def decode(maps: tuple[torch.Tensor, ...], input_size: tuple[int, int], num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Raw head maps -> ``(B, N, 5 + classes)``: box centre x, y, width, height in input pixels, objectness
    probability, class probabilities (darknet's ``yolo`` layer: sigmoid offsets in the cell, exp of the anchor
    scale, independent sigmoids for objectness and classes). Differentiable."""
    height, width = input_size
    decoded = []
    for raw, anchor_ids in zip(maps, HEAD_ANCHORS):
        batch, _, rows, cols = raw.shape
        raw = raw.view(batch, len(anchor_ids), 5 + num_classes, rows, cols).permute(0, 1, 3, 4, 2)
        grid_y, grid_x = torch.meshgrid(torch.arange(rows, device=raw.device), torch.arange(cols, device=raw.device),
                                        indexing="ij")
        anchors = torch.tensor([ANCHORS[i] for i in anchor_ids], dtype=raw.dtype, device=raw.device).view(1, -1, 1, 1, 2)
        centre_x = (raw[..., 0].sigmoid() + grid_x) * (width / cols)
        centre_y = (raw[..., 1].sigmoid() + grid_y) * (height / rows)
        size = raw[..., 2:4].exp() * anchors
        rest = raw[..., 4:].sigmoid()
        boxes = torch.cat([centre_x[..., None], centre_y[..., None], size, rest], dim=-1)
        decoded.append(boxes.reshape(batch, -1, 5 + num_classes))
    return torch.cat(decoded, dim=1)
