"""NRP-Lite: identity at initialisation, any image size, a true residual purifier, recognised from its keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nrp.purifiers import PURIFIERS, NRPLite, architecture_of, create_network
from nrp.purifiers.registry import infer_architecture


@pytest.mark.parametrize("size", [(16, 16), (15, 17), (1, 2)])
def test_untrained_network_is_the_identity_at_every_size(size):
    x = torch.rand(2, 3, *size)
    assert torch.equal(NRPLite(width=8, blocks=2)(x), x)


def test_output_is_input_plus_the_unfolded_correction():
    torch.manual_seed(0)
    network = NRPLite(width=8, blocks=1)
    torch.nn.init.normal_(network.tail.weight, std=0.1)
    x = torch.rand(1, 3, 8, 6)
    folded = F.pixel_unshuffle(x, 2)
    features = network.body(F.relu(network.head(folded)))
    expected = x + F.pixel_shuffle(network.tail(features), 2)
    torch.testing.assert_close(network(x), expected)
    assert not torch.equal(network(x), x)


def test_odd_sizes_are_cropped_back_after_edge_padding():
    torch.manual_seed(0)
    network = NRPLite(width=8, blocks=1)
    torch.nn.init.normal_(network.tail.weight, std=0.1)
    x = torch.rand(1, 3, 7, 9)
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")
    torch.testing.assert_close(network(x), network(padded)[..., :7, :9])


def test_registered_and_recognised_from_a_plain_state_dict():
    network = create_network("nrp_lite", width=12, blocks=3)
    assert PURIFIERS["nrp_lite"] is NRPLite
    assert architecture_of(network) == ("nrp_lite", {"width": 12, "blocks": 3})
    assert infer_architecture(network.state_dict()) == ("nrp_lite", {"width": 12, "blocks": 3})


def test_parameter_count_of_the_shipped_size():
    # head 12->64, 8 blocks of two 64->64 convs, tail 64->12, all 3x3 with biases
    conv = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731
    expected = conv(12, 64) + 16 * conv(64, 64) + conv(64, 12)
    assert sum(p.numel() for p in NRPLite().parameters()) == expected == 604_748
