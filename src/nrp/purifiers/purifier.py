"""The purifier as a defense: an ``nn.Module`` from [0, 1] images to [0, 1] images."""

from __future__ import annotations

import torch
from torch import nn

from nrp.purifiers.dynamic import DEFAULT_NOISE_EPS, DEFAULT_NOISE_STD, dynamic_noise
from nrp.purifiers.tiling import DEFAULT_TILE_OVERLAP, purify_tiled


class Purifier(nn.Module):
    """Put a purifier network in front of any vision model: ``nn.Sequential(Purifier(net), classifier)``.

    Args:
        network: an image-to-image purifier network (e.g. :class:`~nrp.purifiers.NRP`).
        dynamic: first draw a noisy copy of the input (:func:`~nrp.purifiers.dynamic_noise`), the authors'
            dynamic defense; a fresh draw on every call.
        noise_std: standard deviation of the dynamic noise, [0, 1] units.
        noise_eps: L-inf radius the dynamic noise is projected into, [0, 1] units.
        tile_size: when set, images with a side longer than this are purified tile by tile
            (:func:`~nrp.purifiers.purify_tiled`), bounding peak memory.
        tile_overlap: context and blend width between tiles, pixels.
        generator: random generator of the dynamic noise, for reproducible draws.

    Shapes:
        ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` in [0, 1] (the network output is clamped).
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        dynamic: bool = False,
        noise_std: float = DEFAULT_NOISE_STD,
        noise_eps: float = DEFAULT_NOISE_EPS,
        tile_size: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.dynamic = dynamic
        self.noise_std = noise_std
        self.noise_eps = noise_eps
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            x = dynamic_noise(x, self.noise_std, self.noise_eps, self.generator)
        if self.tile_size is not None and max(x.shape[-2:]) > self.tile_size:
            purified = purify_tiled(self.network, x, self.tile_size, self.tile_overlap)
        else:
            purified = self.network(x)
        return purified.clamp(0.0, 1.0)
