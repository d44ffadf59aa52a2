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


@pytest.fixture
def features() -> nn.Module:
    return small_features()


@pytest.fixture
def features64() -> nn.Module:
    return small_features(torch.float64)
