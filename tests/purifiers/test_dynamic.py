"""The dynamic defense's random draw: bounded, in range, really random, reproducible with a generator."""

from __future__ import annotations

import pytest
import torch

from nrp.purifiers import dynamic_noise

EPS = 16 / 255


def test_defaults_are_the_authors():
    from nrp.purifiers.dynamic import DEFAULT_NOISE_EPS, DEFAULT_NOISE_STD

    assert DEFAULT_NOISE_STD == 0.05
    assert DEFAULT_NOISE_EPS == 16 / 255


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("std", "eps"), [(0.05, EPS), (1.0, EPS), (0.5, 8 / 255), (0.05, 0.5)])
def test_stays_in_the_eps_ball_and_in_range(seed, std, eps):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 9, 11, generator=generator)
    x[:, :, 0] = 0.0  # pixels on the range boundaries, where the clamp matters
    x[:, :, 1] = 1.0
    out = dynamic_noise(x, std=std, eps=eps, generator=generator)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert (out - x).abs().max().item() <= eps + 1e-7
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


def test_noise_changes_the_input():
    x = torch.full((1, 3, 32, 32), 0.5)
    out = dynamic_noise(x, generator=torch.Generator().manual_seed(0))
    changed = (out != x).float().mean().item()
    assert changed > 0.99
    # N(0, 1) * 0.05 is mostly inside the 16/255 ball, so the draw's spread is close to std.
    assert 0.04 < (out - x).std().item() < 0.06


def test_large_noise_sits_on_the_ball_boundary():
    x = torch.full((1, 3, 32, 32), 0.5)
    out = dynamic_noise(x, std=10.0, generator=torch.Generator().manual_seed(0))
    on_boundary = ((out - x).abs() - EPS).abs() < 1e-6
    assert on_boundary.float().mean().item() > 0.99
    # Both sides of the ball are used.
    assert (out > x).any() and (out < x).any()


def test_each_image_of_a_batch_gets_its_own_draw():
    x = torch.full((2, 3, 8, 8), 0.5)
    out = dynamic_noise(x, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out[0], out[1])


def test_same_seed_gives_the_same_draw_and_different_seeds_differ():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    a = dynamic_noise(x, generator=torch.Generator().manual_seed(1))
    b = dynamic_noise(x, generator=torch.Generator().manual_seed(1))
    c = dynamic_noise(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_consecutive_draws_from_one_generator_differ():
    x = torch.rand(1, 3, 16, 16)
    generator = torch.Generator().manual_seed(1)
    assert not torch.equal(dynamic_noise(x, generator=generator), dynamic_noise(x, generator=generator))


def test_zero_std_returns_the_input():
    x = torch.rand(2, 3, 16, 16)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    assert torch.equal(dynamic_noise(x, std=0.0), x)


def test_matches_the_reference_formula():
    # x + N(0,1) * std, projected into [x - eps, x + eps], clamped to [0, 1].
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    out = dynamic_noise(x, std=0.05, eps=EPS, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    expected = torch.clamp(torch.clamp(x + noise * 0.05, x - EPS, x + EPS), 0.0, 1.0)
    assert torch.equal(out, expected)


def test_does_not_modify_its_input():
    x = torch.rand(1, 3, 8, 8)
    before = x.clone()
    dynamic_noise(x, std=1.0)
    assert torch.equal(x, before)
