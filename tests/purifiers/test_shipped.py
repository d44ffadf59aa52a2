"""The purifiers shipped in the package (the default and the candidates beside it, docs/offline_benchmark.md):
present, small, the recorded architecture, and they purify."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nrp.checkpoints import read_checkpoint
from nrp.purifiers import NRPLite, Purifier, load_network, shipped_weights

MAX_BYTES = 20 * 1024 * 1024  # the cap on the shipped file
PACKAGED = sorted(shipped_weights().parent.glob("*.safetensors"))


def test_the_default_is_among_the_packaged_files():
    assert shipped_weights() in PACKAGED


@pytest.mark.parametrize("path", PACKAGED, ids=lambda path: path.name)
def test_shipped_file_is_small_and_self_describing(path):
    assert path.suffix == ".safetensors" and path.stat().st_size <= MAX_BYTES
    checkpoint = read_checkpoint(path)
    assert checkpoint.architecture == "nrp_lite"
    assert checkpoint.arguments == {"width": 64, "blocks": 8}


@pytest.mark.parametrize("path", PACKAGED, ids=lambda path: path.name)
def test_shipped_purifier_is_trained_and_keeps_a_clean_image_close(path):
    network = load_network(path)
    assert isinstance(network, NRPLite)
    assert network.tail.weight.abs().sum() > 0  # an untrained NRP-Lite has a zero tail (the identity)
    torch.manual_seed(0)
    clean = F.interpolate(torch.rand(1, 3, 8, 8), size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    noisy = (clean + (16 / 255) * torch.randn_like(clean).sign()).clamp(0, 1)
    with torch.inference_mode():
        purified = Purifier(network)(noisy)
    assert purified.shape == (1, 3, 64, 64)
    assert 0.0 <= purified.min() and purified.max() <= 1.0
    # the output stays an image of the same scene: far closer to the clean image than a uniform guess would be
    assert F.mse_loss(purified, clean) < 0.01
