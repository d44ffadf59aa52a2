import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from nrp.purifiers import NRP, save_network


def tree_fingerprint(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


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
def vgg_weights(tmp_path_factory) -> Path:
    """Random VGG16 weights of the layers up to conv3_3, as a user's --backbone-weights file."""
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features[:16]
    path = tmp_path_factory.mktemp("weights") / "vgg16_conv3_3.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path
