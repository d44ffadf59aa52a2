"""Properties every registered defense has: [0, 1] -> [0, 1], batched, composable, device-agnostic."""

import pytest
import torch
from torch import nn

from nrp.defenses import DEFENSES, create_defense
from nrp.defenses.random_resize_pad import output_size_for

RANDOM = {"tvm", "random_resize_pad", "nrp_dynamic", "nrp_lite_shipped_dynamic"}
DETERMINISTIC = sorted(set(DEFENSES) - RANDOM)


def build(name, weights, generator=None, device="cpu"):
    params = {}
    if name.startswith("nrp"):
        params.update(device=device)
    if name in ("nrp", "nrp_dynamic"):
        params.update(weights=weights)
    if name in RANDOM and generator is not None:
        params["generator"] = generator
    return create_defense(name, **params)


def classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_shape_and_range(name, tiny_weights, images):
    x = images(2, 24, 20)
    with torch.no_grad():
        y = build(name, tiny_weights)(x)
    expected = (2, 3, *output_size_for(24, 20)) if name == "random_resize_pad" else x.shape
    assert y.shape == expected
    assert y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_composes_with_a_classifier(name, tiny_weights, images):
    x = images(2, 16, 16)
    defense = build(name, tiny_weights, torch.Generator().manual_seed(0))
    model = classifier()
    with torch.no_grad():
        logits = nn.Sequential(defense, model)(x)
        replay = build(name, tiny_weights, torch.Generator().manual_seed(0))
        assert torch.equal(logits, model(replay(x)))
    assert logits.shape == (2, 5)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_batch_equals_images_one_by_one(name, tiny_weights, images):
    x = images(3, 16, 16)
    defense = build(name, tiny_weights)
    with torch.no_grad():
        together = defense(x)
        alone = torch.cat([defense(image[None]) for image in x])
    assert torch.allclose(together, alone, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_defenses_are_reproducible_with_a_generator(name, tiny_weights, images):
    x = images(2, 16, 16)
    with torch.no_grad():
        first = build(name, tiny_weights, torch.Generator().manual_seed(3))(x)
        second = build(name, tiny_weights, torch.Generator().manual_seed(3))(x)
        other = build(name, tiny_weights, torch.Generator().manual_seed(4))(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_cuda_matches_cpu(name, tiny_weights, images):
    x = images(2, 16, 16)
    with torch.no_grad():
        on_cpu = build(name, tiny_weights)(x)
        on_gpu = build(name, tiny_weights, device="cuda")(x.cuda())
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_defenses_run_on_cuda(name, tiny_weights, images):
    x = images(2, 16, 16).cuda()
    with torch.no_grad():
        y = build(name, tiny_weights, torch.Generator().manual_seed(0), device="cuda")(x)
    assert y.device.type == "cuda" and y.min() >= 0 and y.max() <= 1
