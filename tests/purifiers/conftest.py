"""Fixtures for the purifier tests: tiny random-weight networks and small generated images."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from nrp.purifiers import NRP, NRPResG


@pytest.fixture
def tiny_nrp() -> NRP:
    """An NRP with one RRDB (receptive-field radius 17 px), seeded, in eval mode."""
    torch.manual_seed(0)
    return NRP(width=8, blocks=1, growth=4).eval()


@pytest.fixture
def tiny_resg() -> NRPResG:
    """An NRP_resG with two residual blocks, seeded, in eval mode."""
    torch.manual_seed(1)
    return NRPResG(width=8, blocks=2).eval()


@pytest.fixture
def images() -> Callable[..., torch.Tensor]:
    """Factory of random ``(B, 3, H, W)`` images in [0, 1], seeded per test."""
    generator = torch.Generator().manual_seed(2)

    def make(batch: int = 1, height: int = 16, width: int = 16) -> torch.Tensor:
        return torch.rand(batch, 3, height, width, generator=generator)

    return make
