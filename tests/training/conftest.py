from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nrp.training import TrainConfig


@pytest.fixture(scope="session")
def training_photos(tmp_path_factory) -> Path:
    """Six noisy, smooth-ish images of different sizes, standing in for MS-COCO."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index in range(6):
        height, width = 40 + 4 * index, 56
        base = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        pixels = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{index}.png")
    return folder


@pytest.fixture(scope="session")
def validation_photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("val")
    rng = np.random.default_rng(1)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"val_{index}.png")
    return folder


@pytest.fixture(scope="session")
def early_vgg_weights(vgg16_weights) -> Path:
    """Random VGG16 weights up to conv1_2: a cheap stand-in for the paper's conv3_3 extractor."""
    return vgg16_weights(4)


@pytest.fixture
def tiny_config(training_photos, validation_photos, early_vgg_weights, tmp_path):
    """A factory of small, fast training configurations; keyword arguments override fields."""

    def make(**overrides) -> TrainConfig:
        values = dict(
            data=[str(training_photos)], out=str(tmp_path / "run"), val=[str(validation_photos)], val_images=2,
            purifier="nrp", width=8, blocks=1, growth=4, critic_width=4, iterations=4, batch_size=4, crop=32,
            resize=40, ssp_steps=2, backbone="vgg16", layer="conv1_2", backbone_weights=str(early_vgg_weights),
            workers=0, checkpoint_every=2, val_every=2, log_every=1,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make
