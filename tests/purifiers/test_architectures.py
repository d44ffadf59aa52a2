"""The NRP and NRP_resG networks against the authors' published layout (REFERENCE.md) and known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrp.purifiers import NRP, NRPResG
from nrp.purifiers.nrp_arch import RRDB, ResidualDenseBlock


def nrp_layout(width: int = 64, blocks: int = 23, growth: int = 32) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the authors' NRP state dict, written out from the specification."""
    layout = {"conv_first.weight": (width, 3, 3, 3), "conv_first.bias": (width,)}
    for block in range(blocks):
        for rdb in (1, 2, 3):
            for conv in range(1, 6):
                prefix = f"RRDB_trunk.{block}.RDB{rdb}.conv{conv}"
                inputs = width + (conv - 1) * growth
                outputs = growth if conv < 5 else width
                layout[f"{prefix}.weight"] = (outputs, inputs, 3, 3)
                layout[f"{prefix}.bias"] = (outputs,)
    layout["trunk_conv.weight"] = (3, width, 3, 3)
    layout["trunk_conv.bias"] = (3,)
    return layout


def resg_layout(width: int = 64, blocks: int = 23) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the authors' NRP_resG state dict, written out from the specification."""
    layout = {"conv_first.weight": (width, 3, 3, 3), "conv_first.bias": (width,)}
    for block in range(blocks):
        for conv in (1, 2):
            layout[f"recon_trunk.{block}.conv{conv}.weight"] = (width, width, 3, 3)
            layout[f"recon_trunk.{block}.conv{conv}.bias"] = (width,)
    layout["conv_last.weight"] = (3, width, 3, 3)
    layout["conv_last.bias"] = (3,)
    return layout


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def zero_(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()


# --- layout and sizes of the published networks -------------------------------------------------------


def test_default_nrp_has_the_published_parameter_count():
    network = NRP()
    assert parameter_count(network) == 16_550_275
    assert parameter_count(network) == sum(math.prod(s) for s in nrp_layout().values())


def test_default_resg_has_the_published_parameter_count():
    network = NRPResG()
    assert parameter_count(network) == 1_702_211
    assert parameter_count(network) == sum(math.prod(s) for s in resg_layout().values())


def test_block_parameter_counts():
    assert parameter_count(ResidualDenseBlock(64, 32)) == 239_808
    assert parameter_count(RRDB(64, 32)) == 719_424


def test_default_nrp_state_dict_matches_the_published_layout_exactly():
    actual = shapes(NRP())
    assert actual == nrp_layout()
    assert "RRDB_trunk.0.RDB1.conv1.weight" in actual
    assert "RRDB_trunk.22.RDB3.conv5.bias" in actual
    assert "RRDB_trunk.23.RDB1.conv1.weight" not in actual


def test_default_resg_state_dict_matches_the_published_layout_exactly():
    actual = shapes(NRPResG())
    assert actual == resg_layout()
    assert "recon_trunk.22.conv2.weight" in actual
    assert "recon_trunk.23.conv1.weight" not in actual


def test_dense_block_channels_follow_the_reference():
    block = ResidualDenseBlock(64, 32)
    convs = [block.conv1, block.conv2, block.conv3, block.conv4, block.conv5]
    assert [c.in_channels for c in convs] == [64, 96, 128, 160, 192]
    assert [c.out_channels for c in convs] == [32, 32, 32, 32, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)


@pytest.mark.parametrize("arguments", [{"width": 8, "blocks": 1, "growth": 4}, {"width": 12, "blocks": 3, "growth": 6}])
def test_small_nrp_layouts_follow_the_arguments(arguments):
    assert shapes(NRP(**arguments)) == nrp_layout(**arguments)


@pytest.mark.parametrize("arguments", [{"width": 8, "blocks": 2}, {"width": 16, "blocks": 5}])
def test_small_resg_layouts_follow_the_arguments(arguments):
    assert shapes(NRPResG(**arguments)) == resg_layout(**arguments)


@pytest.mark.parametrize("size", [(17, 23), (16, 16), (1, 5), (33, 8)])
def test_output_shape_equals_input_shape(tiny_nrp, tiny_resg, images, size):
    x = images(2, *size)
    with torch.no_grad():
        assert tiny_nrp(x).shape == x.shape
        assert tiny_resg(x).shape == x.shape


# --- known answers on constructed weights -------------------------------------------------------------


def test_nrp_has_no_global_skip(tiny_nrp, images):
    zero_(tiny_nrp)
    x = images(2, 17, 23)
    with torch.no_grad():
        out = tiny_nrp(x)
    assert torch.equal(out, torch.zeros_like(x))


def test_resg_with_conv_last_zeroed_outputs_zero(tiny_resg, images):
    zero_(tiny_resg.conv_last)
    x = images(2, 17, 23)
    with torch.no_grad():
        out = tiny_resg(x)
    assert torch.equal(out, torch.zeros_like(x))


def test_dense_block_with_constant_conv5_adds_a_fifth_of_it():
    torch.manual_seed(3)
    block = ResidualDenseBlock(8, 4).eval()
    c = torch.tensor([0.5, -1.0, 2.0, 3.0, -0.25, 1.5, 0.0, 4.0])
    with torch.no_grad():
        block.conv5.weight.zero_()
        block.conv5.bias.copy_(c)
        x = torch.randn(2, 8, 9, 7)
        out = block(x)
    torch.testing.assert_close(out, x + 0.2 * c[None, :, None, None], rtol=0, atol=1e-6)


def test_rrdb_with_silent_dense_blocks_scales_its_input_by_1_2():
    # Each dense block is then the identity, and the RRDB returns 0.2 * x + x.
    torch.manual_seed(4)
    block = RRDB(8, 4).eval()
    with torch.no_grad():
        for rdb in (block.RDB1, block.RDB2, block.RDB3):
            zero_(rdb.conv5)
        x = torch.randn(2, 8, 9, 7)
        out = block(x)
    torch.testing.assert_close(out, 1.2 * x, rtol=0, atol=1e-6)


def test_rrdb_with_constant_conv5_biases_matches_the_scaled_sum():
    # RDB_k adds 0.2 c, so RDB3(RDB2(RDB1(x))) = x + 0.6 c and the RRDB gives 0.2 (x + 0.6 c) + x.
    torch.manual_seed(5)
    block = RRDB(8, 4).eval()
    c = torch.linspace(-1.0, 1.0, 8)
    with torch.no_grad():
        for rdb in (block.RDB1, block.RDB2, block.RDB3):
            rdb.conv5.weight.zero_()
            rdb.conv5.bias.copy_(c)
        x = torch.randn(1, 8, 6, 5)
        out = block(x)
    torch.testing.assert_close(out, 1.2 * x + 0.12 * c[None, :, None, None], rtol=0, atol=1e-6)


def reference_dense_block(block: ResidualDenseBlock, x: torch.Tensor) -> torch.Tensor:
    """The reference's dense block written with functional calls: LeakyReLU(0.2) after conv1-4, 0.2 x5 + x."""
    convs = [block.conv1, block.conv2, block.conv3, block.conv4, block.conv5]
    features = [x]
    for conv in convs[:4]:
        features.append(F.leaky_relu(F.conv2d(torch.cat(features, 1), conv.weight, conv.bias, padding=1), 0.2))
    x5 = F.conv2d(torch.cat(features, 1), convs[4].weight, convs[4].bias, padding=1)
    return x5 * 0.2 + x


def test_nrp_equals_an_independent_functional_implementation(tiny_nrp, images):
    x = images(2, 11, 13)

    def reference(x: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(x, tiny_nrp.conv_first.weight, tiny_nrp.conv_first.bias, padding=1)
        for rrdb in tiny_nrp.RRDB_trunk:
            out = h
            for rdb in (rrdb.RDB1, rrdb.RDB2, rrdb.RDB3):
                out = reference_dense_block(rdb, out)
            h = out * 0.2 + h
        return F.conv2d(h, tiny_nrp.trunk_conv.weight, tiny_nrp.trunk_conv.bias, padding=1)

    with torch.no_grad():
        torch.testing.assert_close(tiny_nrp(x), reference(x), rtol=1e-5, atol=1e-6)


def test_resg_equals_an_independent_functional_implementation(tiny_resg, images):
    x = images(2, 11, 13)

    def reference(x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(F.conv2d(x, tiny_resg.conv_first.weight, tiny_resg.conv_first.bias, padding=1), 0.1)
        for block in tiny_resg.recon_trunk:
            inner = F.relu(F.conv2d(h, block.conv1.weight, block.conv1.bias, padding=1))
            h = h + F.conv2d(inner, block.conv2.weight, block.conv2.bias, padding=1)
        return F.conv2d(h, tiny_resg.conv_last.weight, tiny_resg.conv_last.bias, padding=1)

    with torch.no_grad():
        torch.testing.assert_close(tiny_resg(x), reference(x), rtol=1e-5, atol=1e-6)


def test_nrp_receptive_field_radius_is_one_pixel_per_convolution(tiny_nrp):
    # conv_first + 3 dense blocks x 5 convolutions + trunk_conv = 17 chained 3x3 convolutions.
    x = torch.rand(1, 3, 48, 48, requires_grad=True)
    tiny_nrp(x)[0, :, 24, 24].sum().backward()
    rows, cols = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    assert (rows.min().item(), rows.max().item()) == (24 - 17, 24 + 17)
    assert (cols.min().item(), cols.max().item()) == (24 - 17, 24 + 17)
