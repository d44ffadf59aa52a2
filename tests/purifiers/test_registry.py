"""The purifier registry: building by name, reading a network's arguments back, recognising state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.errors import InputError
from nrp.purifiers import (
    NRP, PURIFIERS, NRPResG, architecture_of, create_network, load_network, register_purifier, registry, shipped_weights,
)
from nrp.purifiers.registry import infer_architecture


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Let a test register names without leaking them into the other tests."""
    monkeypatch.setattr(registry, "PURIFIERS", dict(registry.PURIFIERS))
    monkeypatch.setattr(registry, "ARGUMENT_INFERENCE", dict(registry.ARGUMENT_INFERENCE))


def test_both_published_architectures_are_registered():
    assert PURIFIERS["nrp"] is NRP
    assert PURIFIERS["nrp_resg"] is NRPResG


def test_create_network_builds_nrp_with_its_arguments():
    network = create_network("nrp", width=8, blocks=2, growth=4)
    assert type(network) is NRP
    assert (network.width, network.blocks, network.growth) == (8, 2, 4)
    assert len(network.RRDB_trunk) == 2
    assert network.conv_first.out_channels == 8
    assert network.RRDB_trunk[0].RDB1.conv1.out_channels == 4


def test_create_network_builds_resg_with_its_arguments():
    network = create_network("nrp_resg", width=8, blocks=3)
    assert type(network) is NRPResG
    assert len(network.recon_trunk) == 3
    assert network.conv_last.in_channels == 8


def test_create_network_output_keeps_the_input_shape():
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert create_network("nrp_resg", width=8, blocks=2)(x).shape == x.shape


def test_unknown_name_raises_with_the_known_names():
    with pytest.raises(InputError) as error:
        create_network("esrgan")
    message = str(error.value)
    assert "esrgan" in message
    assert "nrp" in message and "nrp_resg" in message


def test_unknown_constructor_argument_raises():
    with pytest.raises(TypeError):
        create_network("nrp_resg", growth=4)


@pytest.mark.parametrize("name", ["nrp", "nrp_resg"])
def test_registering_an_existing_name_raises_and_keeps_the_original(scratch_registry, name):
    original = registry.PURIFIERS[name]
    with pytest.raises(ValueError, match=name):
        register_purifier(name, nn.Identity, lambda state: {})
    assert registry.PURIFIERS[name] is original


def test_a_registered_purifier_can_be_created_and_described(scratch_registry):
    class Doubler(nn.Module):
        def __init__(self, scale: float = 2.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    register_purifier("doubler", Doubler, lambda state: {})
    network = create_network("doubler", scale=3.0)
    assert type(network) is Doubler and network.scale == 3.0
    assert architecture_of(network) == ("doubler", {"scale": 3.0})


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("nrp", {"width": 8, "blocks": 1, "growth": 4}),
        ("nrp", {"width": 16, "blocks": 3, "growth": 8}),
        ("nrp", {"width": 64, "blocks": 23, "growth": 32}),
        ("nrp_resg", {"width": 8, "blocks": 2}),
        ("nrp_resg", {"width": 64, "blocks": 23}),
    ],
)
def test_architecture_of_rebuilds_an_identically_shaped_network(name, arguments):
    network = create_network(name, **arguments)
    found_name, found_arguments = architecture_of(network)
    assert (found_name, found_arguments) == (name, arguments)
    assert shapes(create_network(found_name, **found_arguments)) == shapes(network)


def test_architecture_of_an_unregistered_network_raises():
    with pytest.raises(InputError, match="nrp"):
        architecture_of(nn.Conv2d(3, 3, 3))


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("nrp", {"width": 8, "blocks": 1, "growth": 4}),
        ("nrp", {"width": 12, "blocks": 4, "growth": 6}),
        ("nrp", {"width": 64, "blocks": 23, "growth": 32}),
        ("nrp_resg", {"width": 8, "blocks": 1}),
        ("nrp_resg", {"width": 8, "blocks": 11}),
        ("nrp_resg", {"width": 64, "blocks": 23}),
    ],
)
def test_infer_architecture_recovers_name_and_arguments_from_a_plain_state_dict(name, arguments):
    state = create_network(name, **arguments).state_dict()
    assert infer_architecture(state) == (name, arguments)
    assert infer_architecture(dict(state)) == (name, arguments)


@pytest.mark.parametrize(
    "state",
    [
        nn.Linear(4, 2).state_dict(),
        nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 3, 3)).state_dict(),
        {"conv_first.weight": torch.zeros(8, 3, 3, 3), "conv_first.bias": torch.zeros(8)},
        {},
    ],
    ids=["linear", "sequential", "conv_first-only", "empty"],
)
def test_infer_architecture_returns_none_for_unrelated_state_dicts(state):
    assert infer_architecture(state) is None


def test_the_cpu_choice_is_registered_and_is_what_ships():
    # The shipped file is an instance of the architecture the registry names as the winner at equal CPU time.
    assert registry.CPU_CHOICE in PURIFIERS
    shipped = load_network(shipped_weights())
    assert architecture_of(shipped)[0] == registry.CPU_CHOICE
