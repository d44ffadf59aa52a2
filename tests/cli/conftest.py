from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.purifiers import NRP, save_network


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A nested folder of images of two sizes, one JPEG, and one file that is not an image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (18, 30, 3), dtype=np.uint8)).save(folder / "nested" / "c.jpg")
    (folder / "nested" / "broken.png").write_bytes(b"this is not a png")
    return folder


@pytest.fixture
def tiny_purifier(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny_nrp.safetensors"
    save_network(NRP(width=8, blocks=1, growth=4), path)
    return path


@pytest.fixture(scope="session")
def vgg_weights(vgg16_weights) -> Path:
    """Random VGG16 weights of the layers up to conv3_3 (the paper's extractor)."""
    return vgg16_weights(16)


@pytest.fixture
def train_config(tmp_path: Path, vgg_weights: Path) -> Path:
    """A tiny ``nrp train`` config (4 photos, 1-block NRP-ResG, checkpoint every iteration); the run goes to ``--out``."""
    import yaml

    folder = tmp_path / "train_photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({
        "data": [str(folder)], "purifier": "nrp_resg", "width": 4, "blocks": 1, "critic-width": 4,
        "iterations": 2, "batch_size": 2, "crop": 32, "resize": 40, "ssp_steps": 1, "layer": "conv1_1",
        "backbone_weights": str(vgg_weights), "workers": 0, "checkpoint_every": 1, "log_every": 1,
    }))
    return path
