"""Fixtures for the defense tests: small generated images and a tiny saved purifier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nrp.purifiers import NRP, save_network


@pytest.fixture
def images() -> Callable[..., torch.Tensor]:
    """Factory of random ``(B, 3, H, W)`` images in [0, 1], seeded per test."""
    generator = torch.Generator().manual_seed(2)

    def make(batch: int = 2, height: int = 16, width: int = 16, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(batch, 3, height, width, generator=generator, dtype=dtype)

    return make


@pytest.fixture
def smooth_images() -> Callable[..., torch.Tensor]:
    """Factory of smooth ``(B, 3, H, W)`` images in [0, 1]: bicubic upsampling of a coarse random grid."""
    generator = torch.Generator().manual_seed(3)

    def make(batch: int = 2, height: int = 32, width: int = 32) -> torch.Tensor:
        coarse = torch.rand(batch, 3, 4, 4, generator=generator)
        return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0.0, 1.0)

    return make


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A saved NRP with one RRDB, random seeded weights: what ``weights=`` of the nrp defenses reads."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("purifier") / "tiny_nrp.safetensors"
    save_network(NRP(width=8, blocks=1, growth=4), path)
    return path
