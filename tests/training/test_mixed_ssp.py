"""The TI-smoothed SSP extension: SSP with smoothed gradients, and the mixed training perturbation."""

from __future__ import annotations

import pytest
import torch

from nrp.attacks import ssp
from nrp.attacks.transforms import gaussian_kernel1d, smooth_gradient
from nrp.errors import InputError
from nrp.training.config import TrainConfig
from nrp.training.perturbations import PerturbationSettings, make_perturbation


def features():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))


def test_a_1x1_kernel_is_plain_ssp_and_a_larger_one_is_not():
    extractor, x = features(), torch.rand(2, 3, 24, 24)
    run = lambda kernel: ssp(x, extractor, eps=8 / 255, steps=3, generator=torch.Generator().manual_seed(1), ti_kernel=kernel)  # noqa: E731
    assert torch.equal(run(None), run(1))
    smoothed = run(7)
    assert not torch.equal(run(None), smoothed)
    assert (smoothed - x).abs().max() <= 8 / 255 + 1e-6


def test_smoothed_steps_follow_the_sign_of_the_smoothed_gradient():
    extractor, x = features(), torch.rand(1, 3, 24, 24)
    start = (x + 4 / 255 * torch.randn_like(x).sign()).clamp(0, 1)
    one_step = ssp(x, extractor, eps=16 / 255, step_size=2 / 255, steps=1, init=start, ti_kernel=5)
    probe = start.clone().requires_grad_(True)
    distance = (extractor(probe) - extractor(x)).square().flatten(1).mean(1).sum()
    (gradient,) = torch.autograd.grad(distance, probe)
    step = smooth_gradient(gradient, gaussian_kernel1d(5)).sign() * 2 / 255
    expected = torch.minimum(torch.maximum(start + step, (x - 16 / 255).clamp(min=0)), (x + 16 / 255).clamp(max=1))
    torch.testing.assert_close(one_step, expected)


@pytest.mark.parametrize("fraction, smoothed", [(0.0, 0), (1.0, 6), (0.5, None)])
def test_the_share_of_smoothed_samples_is_read_off_the_noise(fraction, smoothed):
    extractor, x = features(), torch.rand(6, 3, 16, 16)
    noise = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    mixed = make_perturbation("ssp", PerturbationSettings(ssp_steps=2, ssp_ti_kernel=5, ssp_ti_fraction=fraction), extractor)(x, noise)
    plain = make_perturbation("ssp", PerturbationSettings(ssp_steps=2), extractor)(x, noise)
    same = [torch.equal(a, b) for a, b in zip(mixed, plain)]
    expected_smoothed = smoothed if smoothed is not None else int((noise[:, 0, 0, 0] < 0).sum())
    assert same.count(False) == expected_smoothed
    assert (mixed - x).abs().max() <= 16 / 255 + 1e-6
    # each sample's result depends only on its own noise: perturbing a slice gives the same images
    sliced = make_perturbation("ssp", PerturbationSettings(ssp_steps=2, ssp_ti_kernel=5, ssp_ti_fraction=fraction), extractor)(x[2:], noise[2:])
    assert torch.equal(sliced, mixed[2:])


def test_config_refuses_even_kernels_and_bad_fractions():
    with pytest.raises(InputError, match="odd"):
        TrainConfig(data=["d"], out="o", ssp_ti_kernel=4).validate()
    with pytest.raises(InputError, match="ssp_ti_fraction must be in"):
        TrainConfig(data=["d"], out="o", ssp_ti_kernel=5, ssp_ti_fraction=1.5).validate()


@pytest.mark.parametrize("kind", ["ssp", "gaussian"])
def test_clean_fraction_passes_its_share_through_unperturbed(kind):
    extractor, x = features(), torch.rand(8, 3, 16, 16)
    noise = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    settings = PerturbationSettings(ssp_steps=2, clean_fraction=0.5)
    perturbed = make_perturbation(kind, settings, extractor)(x, noise)
    full = make_perturbation(kind, PerturbationSettings(ssp_steps=2), extractor)(x, noise)
    kept = noise[:, 1, 0, 0] < 0  # the median of the standard normal
    assert torch.equal(perturbed[kept], x[kept])
    assert torch.equal(perturbed[~kept], full[~kept])
    assert 0 < int(kept.sum()) < 8
