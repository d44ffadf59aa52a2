"""Fixtures for the io tests: small generated images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def random_rgb() -> Callable[..., np.ndarray]:
    """Factory of random (H, W, 3) uint8 pixels, seeded per test."""
    rng = np.random.default_rng(0)

    def make(height: int = 5, width: int = 7) -> np.ndarray:
        return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)

    return make


@pytest.fixture
def save_rgb() -> Callable[..., Path]:
    """Save (H, W, 3) uint8 pixels to a path (creating its folder) and return the path."""

    def save(path: Path, pixels: np.ndarray, **options) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, **options)
        return path

    return save


@pytest.fixture
def open_image() -> Callable[[Path], Image.Image]:
    """Open and fully decode an image with Pillow, closing the file (an independent reference decoder)."""

    def load(path: Path) -> Image.Image:
        with Image.open(path) as image:
            image.load()
            return image

    return load
