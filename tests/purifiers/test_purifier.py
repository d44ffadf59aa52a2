"""The Purifier defense: [0, 1] in, [0, 1] out, optional dynamic noise and tiling, differentiable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.purifiers import Purifier, dynamic_noise


class Affine(nn.Module):
    """``2 x - 0.5``: a stand-in network whose output leaves [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 0.5


class Recorder(nn.Module):
    """The identity, keeping a copy of every input it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x


def test_output_is_clamped_to_the_unit_range(images):
    x = images(2, 16, 16)
    out = Purifier(Affine())(x)
    assert out.min().item() == 0.0 and out.max().item() == 1.0
    inside = (x > 0.25) & (x < 0.75)
    assert inside.any()
    torch.testing.assert_close(out[inside], 2 * x[inside] - 0.5)


def test_random_network_output_is_in_range(tiny_nrp, images):
    x = images(2, 24, 24) * 4 - 2
    with torch.no_grad():
        raw = tiny_nrp(x)
        out = Purifier(tiny_nrp)(x)
    assert raw.min() < 0 or raw.max() > 1  # the test would notice a missing clamp
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


def test_without_options_it_is_the_clamped_network(tiny_nrp, images):
    x = images(2, 20, 18)
    with torch.no_grad():
        assert torch.equal(Purifier(tiny_nrp)(x), tiny_nrp(x).clamp(0, 1))


def test_is_an_nn_module_that_chains_in_a_sequential(tiny_nrp, images):
    defended = nn.Sequential(Purifier(tiny_nrp), nn.Flatten(), nn.Linear(3 * 16 * 16, 5))
    assert defended(images(2, 16, 16)).shape == (2, 5)
    assert any(p is tiny_nrp.conv_first.weight for p in defended.parameters())


@torch.no_grad()
def test_tiled_purifier_equals_the_untiled_one(tiny_nrp, images):
    x = images(2, 80, 56)
    untiled = Purifier(tiny_nrp)(x)
    tiled = Purifier(tiny_nrp, tile_size=32, tile_overlap=40)(x)
    assert (tiled - untiled).abs().max().item() < 1e-5


@torch.no_grad()
def test_tiles_only_when_the_image_is_larger_than_the_tile(images):
    recorder = Recorder()
    purifier = Purifier(recorder, tile_size=32, tile_overlap=8)
    purifier(images(1, 32, 32))
    assert [tuple(t.shape[-2:]) for t in recorder.inputs] == [(32, 32)]
    recorder.inputs.clear()
    purifier(images(1, 33, 20))
    assert len(recorder.inputs) == 2
    assert max(max(t.shape[-2:]) for t in recorder.inputs) <= 32 + 2 * 8


@torch.no_grad()
def test_dynamic_noise_reaches_the_network_within_16_over_255(images):
    recorder = Recorder()
    x = images(2, 24, 24)
    x[:, :, 0] = 0.0
    x[:, :, 1] = 1.0
    Purifier(recorder, dynamic=True)(x)
    (seen,) = recorder.inputs
    assert not torch.equal(seen, x)
    assert (seen - x).abs().max().item() <= 16 / 255 + 1e-7
    assert seen.min().item() >= 0.0 and seen.max().item() <= 1.0


@torch.no_grad()
def test_dynamic_draw_follows_the_generator(images):
    x = images(1, 16, 16)
    recorder = Recorder()
    Purifier(recorder, dynamic=True, noise_std=0.1, noise_eps=8 / 255, generator=torch.Generator().manual_seed(5))(x)
    expected = dynamic_noise(x, std=0.1, eps=8 / 255, generator=torch.Generator().manual_seed(5))
    assert torch.equal(recorder.inputs[0], expected)
    assert (recorder.inputs[0] - x).abs().max().item() <= 8 / 255 + 1e-7


@torch.no_grad()
def test_dynamic_draw_is_fresh_on_every_call(images):
    x = images(1, 16, 16)
    recorder = Recorder()
    purifier = Purifier(recorder, dynamic=True, generator=torch.Generator().manual_seed(0))
    purifier(x)
    purifier(x)
    assert not torch.equal(recorder.inputs[0], recorder.inputs[1])


@torch.no_grad()
def test_without_dynamic_the_network_sees_the_input_unchanged(images):
    recorder = Recorder()
    x = images(2, 16, 16)
    out = Purifier(recorder, dynamic=False)(x)
    assert torch.equal(recorder.inputs[0], x)
    assert torch.equal(out, x)


@pytest.mark.parametrize("options", [{}, {"tile_size": 16, "tile_overlap": 8}, {"dynamic": True}])
def test_gradients_flow_to_the_input(tiny_nrp, images, options):
    x = images(1, 24, 40).requires_grad_()
    purifier = Purifier(tiny_nrp, **options)
    purifier(x).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).float().mean().item() > 0.5
    assert all(p.grad is not None for p in tiny_nrp.parameters())


def test_gradient_is_zero_where_the_output_is_clamped(images):
    x = images(1, 16, 16).requires_grad_()
    Purifier(Affine())(x).sum().backward()
    inside = ((x > 0.25) & (x < 0.75)).detach()
    assert torch.equal(x.grad[inside], torch.full_like(x.grad[inside], 2.0))
    assert torch.equal(x.grad[~inside], torch.zeros_like(x.grad[~inside]))
