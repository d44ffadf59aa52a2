"""A frozen feature extractor: [0, 1] images in, one named layer's activation out."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeatureExtractor(nn.Module):
    """Normalise ``[0, 1]`` images and run a backbone truncated at one layer.

    The backbone's mean/std normalisation lives inside as buffers, and ``body`` holds nothing past the
    chosen layer, so no computation is wasted. All parameters are frozen (``requires_grad=False``) and the
    module starts in eval mode; gradients flow to the input only.

    Args:
        body: the truncated backbone; maps normalised images to the layer's activation.
        mean: per-channel mean the backbone was trained with (RGB, [0, 1] units).
        std: per-channel standard deviation (RGB, [0, 1] units).
        name: how this extractor is described in logs and errors, e.g. ``"vgg16:features.15"``.
        input_size: the side, in pixels, at which the backbone sees every image: images are resized to
            ``input_size x input_size`` (bilinear, antialiased) before normalisation, as a classifier's own
            preprocessing resizes its input, and gradients flow back through the resize to the image's own
            pixels; ``None`` (default): the backbone runs at the image's own size.

    Shapes:
        ``(B, 3, H, W)`` in [0, 1] -> ``(B, C, h, w)`` (or whatever shape the layer produces).
    """

    def __init__(self, body: nn.Module, mean: Sequence[float], std: Sequence[float], name: str = "",
                 input_size: int | None = None) -> None:
        super().__init__()
        self.body = body
        self.name = name
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.body((x - self.mean) / self.std)

    def extra_repr(self) -> str:
        return f"name={self.name!r}" + ("" if self.input_size is None else f", input_size={self.input_size}")
