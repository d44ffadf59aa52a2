import pytest
import torch
from torch import nn


def small_features(dtype: torch.dtype = torch.float32) -> nn.Module:
    """A tiny random conv net standing in for VGG16 conv3_3: frozen, eval mode."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)
    )
    return net.to(dtype).eval().requires_grad_(False)


def small_classifier(dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """A tiny random 10-class conv net taking any image size >= 4 px, in eval mode, parameters trainable.

    Batch-norm and dropout make its train and eval modes differ; its parameters keep requires_grad=True, as a
    user's model would, so tests can check that attacks leave no .grad behind.
    """
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 4 * 4, 10),
    )
    with torch.no_grad():  # non-trivial running statistics, so train and eval modes differ
        net[1].running_mean.uniform_(-0.1, 0.1)
        net[1].running_var.uniform_(0.5, 1.5)
    return net.to(dtype).eval()


def images(seed: int, shape=(4, 3, 16, 16), dtype=torch.float32) -> torch.Tensor:
    """Uniform images with some pixels exactly on the [0, 1] boundary."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=dtype)
    x[:, :, 0, :4] = 0.0
    x[:, :, 1, :4] = 1.0
    return x


@pytest.fixture
def make_images():
    """``make_images(seed, shape=(4, 3, 16, 16), dtype=torch.float32)``: see :func:`images`."""
    return images


@pytest.fixture
def features() -> nn.Module:
    return small_features()


@pytest.fixture
def features64() -> nn.Module:
    return small_features(torch.float64)


@pytest.fixture
def make_classifier():
    """``make_classifier(dtype=torch.float32, seed=0)``: see :func:`small_classifier`."""
    return small_classifier


@pytest.fixture
def classifier() -> nn.Module:
    return small_classifier()


@pytest.fixture
def classifier64() -> nn.Module:
    return small_classifier(torch.float64)
