import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nrp.attacks import DISTANCES, get_distance
from nrp.errors import InputError


@pytest.fixture
def pair():
    torch.manual_seed(1)
    return torch.randn(3, 4, 5, 6), torch.randn(3, 4, 5, 6)


def test_mse_and_mae_equal_torch_losses_per_sample(pair):
    a, b = pair
    for i in range(3):
        assert torch.isclose(get_distance("mse")(a, b)[i], F.mse_loss(a[i], b[i]))
        assert torch.isclose(get_distance("mae")(a, b)[i], F.l1_loss(a[i], b[i]))


def test_cosine_distance_matches_numpy(pair):
    a, b = pair
    distances = get_distance("cosine")(a, b)
    for i in range(3):
        u, v = a[i].flatten().numpy(), b[i].flatten().numpy()
        expected = 1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
        assert distances[i].item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_every_distance_is_zero_between_equal_features(name, pair):
    assert torch.allclose(get_distance(name)(pair[0], pair[0]), torch.zeros(3), atol=1e-6)


def test_unknown_distance_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown distance 'l3'; known: mse, mae, cosine"):
        get_distance("l3")
