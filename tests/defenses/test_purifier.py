import pytest
import torch

from nrp.defenses import create_defense
from nrp.errors import CheckpointError, InputError
from nrp.purifiers import Purifier, dynamic_noise, load_network


def test_static_equals_the_purifier_on_the_loaded_network(tiny_weights, images):
    x = images(2, 16, 16)
    expected = Purifier(load_network(tiny_weights))(x)
    assert torch.equal(create_defense("nrp", weights=tiny_weights)(x), expected)


def test_dynamic_purifies_a_noisy_copy_within_eps(tiny_weights, images):
    x = images(2, 16, 16)
    defense = create_defense("nrp_dynamic", weights=tiny_weights, generator=torch.Generator().manual_seed(7))
    noisy = dynamic_noise(x, 0.05, 16 / 255, torch.Generator().manual_seed(7))
    assert (noisy - x).abs().max() <= 16 / 255 + 1e-6
    assert torch.equal(defense(x), Purifier(load_network(tiny_weights))(noisy))


def test_dynamic_is_random_and_reproducible(tiny_weights, images):
    x = images(1, 16, 16)
    first = create_defense("nrp_dynamic", weights=tiny_weights, generator=torch.Generator().manual_seed(1))
    second = create_defense("nrp_dynamic", weights=tiny_weights, generator=torch.Generator().manual_seed(1))
    a, b = first(x), first(x)
    assert not torch.equal(a, b)
    assert torch.equal(a, second(x))


def test_dynamic_noise_settings_are_passed_on(tiny_weights, images):
    x = images(1, 16, 16)
    silent = create_defense("nrp_dynamic", weights=tiny_weights, noise_std=0.0)
    assert torch.equal(silent(x), create_defense("nrp", weights=tiny_weights)(x))


def test_missing_weights_file(tmp_path):
    with pytest.raises(CheckpointError):
        create_defense("nrp", weights=tmp_path / "absent.pth")


@pytest.mark.parametrize("kwargs", [{"noise_std": -0.1}, {"noise_eps": 2.0}, {"tile_size": 0}])
def test_bad_parameters(tiny_weights, kwargs):
    with pytest.raises(InputError, match=next(iter(kwargs))):
        create_defense("nrp_dynamic", weights=tiny_weights, **kwargs)
