"""NRP-MS: shapes, parameter count, cost per pixel, no input skip, its scales, registry and checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from nrp.errors import InputError
from nrp.purifiers import PURIFIERS, MultiScalePurifier, NRPLite, architecture_of, create_network, load_network, save_network
from nrp.purifiers.registry import infer_architecture


def conv(cin: int, cout: int, k: int = 3) -> int:
    """Parameters of a k x k convolution with bias."""
    return cin * cout * k * k + cout


def expected_parameters(width: int, blocks: int, levels: int) -> int:
    """The parameter count written out from the layout in the class docstring."""
    channels = [width * 2**level for level in range(levels)]
    total = conv(12, width) + conv(width, 12)
    for level, c in enumerate(channels):
        count = blocks + level
        total += count * 2 * conv(c, c)  # encoder level
        if level < levels - 1:
            total += count * 2 * conv(c, c)  # decoder level
            total += conv(c, channels[level + 1])  # stride-2 down
            total += conv(channels[level + 1], 4 * c, 1)  # 1x1 before the pixel shuffle
    return total


@pytest.mark.parametrize("size", [(16, 16), (15, 17), (1, 2), (40, 24)])
def test_output_has_the_input_shape_at_every_size(size):
    network = MultiScalePurifier(width=4, blocks=1, levels=3)
    assert network(torch.rand(2, 3, *size)).shape == (2, 3, *size)


@pytest.mark.parametrize("arguments", [{}, {"width": 8, "blocks": 1, "levels": 2}, {"width": 6, "blocks": 0, "levels": 4}])
def test_parameter_count_follows_the_layout(arguments):
    network = MultiScalePurifier(**arguments)
    full = {"width": 48, "blocks": 2, "levels": 3} | arguments
    assert sum(p.numel() for p in network.parameters()) == expected_parameters(**full)


def test_default_size_and_cost_per_pixel():
    network = MultiScalePurifier()
    assert sum(p.numel() for p in network.parameters()) == 4_129_308
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(torch.rand(1, 3, 64, 64))
    # conv multiply-adds per input pixel, written out level by level (x2 FLOP each)
    per_pixel = (12 * 48 * 9 + 48 * 12 * 9) / 4 + (2 + 2) * 2 * 48 * 48 * 9 / 4 + 48 * 96 * 9 / 16 \
        + (3 + 3) * 2 * 96 * 96 * 9 / 16 + 96 * 192 * 9 / 64 + 4 * 2 * 192 * 192 * 9 / 64 \
        + 192 * 384 / 64 + 96 * 192 / 16
    assert counter.get_total_flops() / 64**2 == pytest.approx(2 * per_pixel)
    assert 2 * per_pixel / 1e6 == pytest.approx(0.3105, abs=1e-4)  # MFLOP per pixel, like NRP-Lite's 0.30


def test_untrained_network_is_not_the_identity():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    assert (MultiScalePurifier(width=8, blocks=1)(x) - x).abs().mean() > 0.1


def test_no_path_copies_the_input_to_the_output():
    # Every path starts at the head convolution: with it zeroed the output no longer depends on x.
    # NRP-Lite, built as x + f(x), returns x itself in the same situation.
    torch.manual_seed(0)
    network = MultiScalePurifier(width=8, blocks=1)
    lite = NRPLite(width=8, blocks=1)
    for net in (network, lite):
        torch.nn.init.zeros_(net.head.weight)
        torch.nn.init.zeros_(net.head.bias)
    first, second = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert torch.equal(network(first), network(second))
    assert torch.equal(lite(first), first)


def test_coarse_levels_see_far_beyond_nrp_lite():
    # The gradient of one output pixel reaches input pixels 100 px away through the 1/8-scale level;
    # NRP-Lite's receptive field (radius about 4 * blocks + 3 folded pixels) stops well short of that.
    torch.manual_seed(0)
    x = torch.rand(1, 3, 256, 256, requires_grad=True)
    for net, reaches in ((MultiScalePurifier(width=4), True), (NRPLite(width=4), False)):
        torch.nn.init.normal_(net.tail.weight, std=0.1)
        (grad,) = torch.autograd.grad(net(x)[0, :, 128, 128].sum(), x)
        assert bool(grad[0, :, 128, 228].abs().sum() > 0) is reaches
        assert bool(grad[0, :, 128, 128].abs().sum() > 0)


def test_one_level_is_head_blocks_tail_at_half_resolution():
    torch.manual_seed(0)
    network = MultiScalePurifier(width=8, blocks=2, levels=1)
    x = torch.rand(1, 3, 6, 10)
    expected = F.pixel_shuffle(network.tail(network.encoder[0](F.relu(network.head(F.pixel_unshuffle(x, 2))))), 2)
    torch.testing.assert_close(network(x), expected)


def test_odd_sizes_are_cropped_back_after_edge_padding():
    torch.manual_seed(0)
    network = MultiScalePurifier(width=4, blocks=1, levels=2)
    x = torch.rand(1, 3, 5, 7)
    padded = F.pad(x, (0, 1, 0, 3), mode="replicate")
    torch.testing.assert_close(network(x), network(padded)[..., :5, :7])


def test_bad_arguments_raise():
    with pytest.raises(InputError, match="levels >= 1"):
        MultiScalePurifier(levels=0)


def test_registered_recognised_and_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    network = create_network("nrp_ms", width=8, blocks=1, levels=2)
    assert PURIFIERS["nrp_ms"] is MultiScalePurifier
    assert architecture_of(network) == ("nrp_ms", {"width": 8, "blocks": 1, "levels": 2})
    assert infer_architecture(network.state_dict()) == ("nrp_ms", {"width": 8, "blocks": 1, "levels": 2})
    x = torch.rand(1, 3, 20, 12)
    for suffix in (".safetensors", ".pth"):
        save_network(network, tmp_path / f"ms{suffix}")
        loaded = load_network(tmp_path / f"ms{suffix}")
        assert type(loaded) is MultiScalePurifier and architecture_of(loaded) == architecture_of(network)
        torch.testing.assert_close(loaded(x), network.eval()(x), rtol=0, atol=0)
    torch.save(network.state_dict(), tmp_path / "plain.pth")  # a plain state dict: recognised from its keys
    assert architecture_of(load_network(tmp_path / "plain.pth")) == ("nrp_ms", {"width": 8, "blocks": 1, "levels": 2})


def test_with_the_coarse_path_cut_the_decoder_refines_the_fine_encoder_features():
    # Zeroing the 1x1 convolution that brings level 1 up leaves the inner skip as the only path:
    # output = tail(decoder_0(encoder_0(head(fold(x))))).
    torch.manual_seed(0)
    network = MultiScalePurifier(width=4, blocks=1, levels=2)
    torch.nn.init.zeros_(network.up[0].weight)
    torch.nn.init.zeros_(network.up[0].bias)
    x = torch.rand(1, 3, 8, 12)
    fine = network.encoder[0](F.relu(network.head(F.pixel_unshuffle(x, 2))))
    torch.testing.assert_close(network(x), F.pixel_shuffle(network.tail(network.decoder[0](fine)), 2))
