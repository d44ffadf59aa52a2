"""Tile-by-tile purification: equal to the untiled network where the context covers the receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrp.purifiers import NRP, purify_tiled


def local_filter(radius: int, seed: int = 0):
    """A random linear filter with receptive-field radius ``radius`` (zero padding, like the networks)."""
    kernel = torch.randn(3, 3, 2 * radius + 1, 2 * radius + 1, generator=torch.Generator().manual_seed(seed))
    kernel = kernel.double()
    return lambda x: F.conv2d(x, kernel, padding=radius)


class WindowRecorder(nn.Module):
    """The identity, noting the height and width of every window it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows.append(tuple(x.shape[-2:]))
        return x


@pytest.fixture
def far_reaching_nrp() -> NRP:
    """A one-block NRP (radius 17 px) whose trunk weights are scaled up, so distant pixels matter.

    With default initialisation the 0.2 residual scales make the trunk's reach faint; scaled by 5 an
    overlap that leaves too little context is visibly wrong, so the exactness test below can fail.
    """
    torch.manual_seed(0)
    network = NRP(width=8, blocks=1, growth=4).eval()
    with torch.no_grad():
        for parameter in network.RRDB_trunk.parameters():
            if parameter.dim() == 4:
                parameter.mul_(5.0)
    return network


@torch.no_grad()
def test_exact_when_half_the_overlap_covers_the_receptive_field(far_reaching_nrp, images):
    x = images(2, 96, 96)
    full = far_reaching_nrp(x)
    tiled = purify_tiled(far_reaching_nrp, x, tile_size=32, overlap=40)
    assert (tiled - full).abs().max().item() < 1e-5


@torch.no_grad()
def test_too_little_context_is_visible(far_reaching_nrp, images):
    # The counterpart of the exactness test: the network's reach is real, so a small overlap shows.
    x = images(2, 96, 96)
    full = far_reaching_nrp(x)
    assert (purify_tiled(far_reaching_nrp, x, 32, overlap=8) - full).abs().max().item() > 1e-3
    assert (purify_tiled(far_reaching_nrp, x, 32, overlap=0) - full).abs().max().item() > 1e-2


@torch.no_grad()
@pytest.mark.parametrize("network_name", ["default", "far_reaching"])
def test_overlap_16_differs_by_less_than_one_grey_level(tiny_nrp, far_reaching_nrp, images, network_name):
    network = tiny_nrp if network_name == "default" else far_reaching_nrp
    x = images(1, 96, 96)
    difference = (purify_tiled(network, x, 32, overlap=16) - network(x)).abs().max().item()
    assert difference < 1 / 255


@torch.no_grad()
@pytest.mark.parametrize(("height", "width"), [(96, 96), (70, 45), (33, 97), (1, 40)])
def test_tile_larger_than_the_image_is_the_network_output(tiny_nrp, images, height, width):
    x = images(2, height, width)
    assert torch.equal(purify_tiled(tiny_nrp, x, tile_size=128, overlap=16), tiny_nrp(x))


@torch.no_grad()
@pytest.mark.parametrize(("height", "width"), [(70, 45), (45, 70), (33, 65), (64, 64)])
def test_non_square_and_non_multiple_sizes(tiny_nrp, images, height, width):
    x = images(2, height, width)
    tiled = purify_tiled(tiny_nrp, x, tile_size=32, overlap=40)
    assert tiled.shape == x.shape
    assert torch.isfinite(tiled).all()
    assert (tiled - tiny_nrp(x)).abs().max().item() < 1e-5


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
@pytest.mark.parametrize(("height", "width", "tile"), [(40, 40, 10), (37, 23, 8), (9, 31, 1), (5, 5, 3)])
def test_linear_filter_is_reproduced_exactly(radius, height, width, tile):
    network = local_filter(radius)
    x = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for overlap in (2 * radius, 2 * radius + 1, 2 * radius + 5):
        tiled = purify_tiled(network, x, tile, overlap)
        torch.testing.assert_close(tiled, network(x), rtol=0, atol=1e-12)


def test_linear_filter_with_too_small_overlap_is_not_reproduced():
    network = local_filter(3)
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert (purify_tiled(network, x, 10, overlap=2) - network(x)).abs().max().item() > 1e-3


@pytest.mark.parametrize(("tile", "overlap"), [(32, 16), (32, 0), (20, 40), (7, 3)])
def test_windows_never_exceed_tile_plus_twice_the_overlap(tile, overlap):
    recorder = WindowRecorder()
    x = torch.rand(1, 3, 101, 77)
    out = purify_tiled(recorder, x, tile, overlap)
    assert torch.allclose(out, x, rtol=0, atol=1e-6)  # blend weights of the identity sum to one
    assert recorder.windows
    assert max(h for h, _ in recorder.windows) <= tile + 2 * overlap
    assert max(w for _, w in recorder.windows) <= tile + 2 * overlap
    # Every pixel's core belongs to exactly one window: ceil(H / tile) * ceil(W / tile) calls.
    assert len(recorder.windows) == -(-101 // tile) * -(-77 // tile)


def test_batch_is_tiled_as_a_whole():
    recorder = WindowRecorder()
    x = torch.rand(3, 3, 40, 40)
    purify_tiled(recorder, x, 20, 4)
    assert len(recorder.windows) == 4


@pytest.mark.parametrize(("tile", "overlap"), [(0, 16), (-5, 16), (32, -1)])
def test_invalid_tile_size_or_overlap_raise(tile, overlap):
    with pytest.raises(ValueError) as error:
        purify_tiled(nn.Identity(), torch.rand(1, 3, 8, 8), tile, overlap)
    assert str(tile) in str(error.value) and str(overlap) in str(error.value)


def test_gradients_match_the_untiled_network(tiny_nrp, images):
    x = images(1, 48, 40)
    weights = torch.rand(1, 3, 48, 40)
    x_full = x.clone().requires_grad_()
    (tiny_nrp(x_full) * weights).sum().backward()
    x_tiled = x.clone().requires_grad_()
    (purify_tiled(tiny_nrp, x_tiled, 16, 40) * weights).sum().backward()
    torch.testing.assert_close(x_tiled.grad, x_full.grad, rtol=1e-4, atol=1e-6)
