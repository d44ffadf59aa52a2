"""The input-diversity SSP extension: SSP measured through DIM's resize-and-pad, and its share of a training batch."""

from __future__ import annotations

import pytest
import torch

from nrp.attacks import ssp
from nrp.attacks.transforms import input_diversity
from nrp.errors import InputError
from nrp.training.config import TrainConfig
from nrp.training.perturbations import PerturbationSettings, make_perturbation


def features(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))


def test_one_diverse_step_follows_the_gradient_through_the_shared_transformation():
    extractor, x = features(), torch.rand(2, 3, 24, 24)
    start = (x + 4 / 255 * torch.randn_like(x).sign()).clamp(0, 1)
    one_step = ssp(x, extractor, eps=16 / 255, step_size=2 / 255, steps=1, init=start, diversity_prob=1.0,
                   generator=torch.Generator().manual_seed(5))
    # the same draw, replayed: one transformation of the stacked clean and adversarial batch
    probe = start.clone().requires_grad_(True)
    both = input_diversity(torch.cat([x, probe]), 1.0, 0.9, torch.Generator().manual_seed(5))
    assert both.shape[-1] == 24 and not torch.equal(both[:2], x)
    distance = (extractor(both[2:]) - extractor(both[:2])).square().flatten(1).mean(1).sum()
    (gradient,) = torch.autograd.grad(distance, probe)
    expected = torch.minimum(torch.maximum(start + 2 / 255 * gradient.sign(), (x - 16 / 255).clamp(min=0)), (x + 16 / 255).clamp(max=1))
    torch.testing.assert_close(one_step, expected)


def test_the_clean_and_adversarial_images_share_each_draw():
    distances = []
    ssp(torch.rand(2, 3, 20, 20), features(), steps=3, init=None, diversity_prob=1.0, start="uniform",
        generator=torch.Generator().manual_seed(2), on_step=lambda step, d: distances.append(d), eps=1e-9, step_size=1e-9)
    # an eps of ~0 keeps x_adv == x, so the distance is exactly zero only if both went through the same transformation
    assert all(float(d.abs().max()) < 1e-10 for d in distances) and len(distances) == 3


def test_zero_probability_is_algorithm_1_and_a_positive_one_changes_the_result():
    extractor, x = features(), torch.rand(2, 3, 24, 24)
    run = lambda prob: ssp(x, extractor, eps=8 / 255, steps=3, generator=torch.Generator().manual_seed(1), diversity_prob=prob)  # noqa: E731
    assert torch.equal(run(0.0), ssp(x, extractor, eps=8 / 255, steps=3, generator=torch.Generator().manual_seed(1)))
    diverse = run(1.0)
    assert not torch.equal(diverse, run(0.0))
    assert (diverse - x).abs().max() <= 8 / 255 + 1e-6 and 0 <= diverse.min() and diverse.max() <= 1


def test_ssp_refuses_a_probability_outside_0_1():
    with pytest.raises(InputError, match="diversity_prob"):
        ssp(torch.rand(1, 3, 8, 8), features(), steps=1, diversity_prob=1.5)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_the_diverse_share_is_read_off_the_third_noise_channel(fraction):
    plain_extractor, deep_extractor, x = features(0), features(1), torch.rand(6, 3, 24, 24)
    noise = torch.randn(6, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    settings = PerturbationSettings(ssp_steps=2, ssp_di_fraction=fraction)
    mixed = make_perturbation("ssp", settings, plain_extractor, di_feature_extractor=deep_extractor)(x, noise)
    plain = make_perturbation("ssp", PerturbationSettings(ssp_steps=2), plain_extractor)(x, noise)
    diverse = noise[:, 2, 0, 0] < (0.0 if fraction == 0.5 else float("inf") if fraction == 1.0 else float("-inf"))
    assert torch.equal(mixed[~diverse], plain[~diverse])
    assert all(not torch.equal(a, b) for a, b in zip(mixed[diverse], plain[diverse]))
    assert (mixed - x).abs().max() <= 16 / 255 + 1e-6
    # the draws follow the noise: the same batch and noise give the same images
    again = make_perturbation("ssp", settings, plain_extractor, di_feature_extractor=deep_extractor)(x, noise)
    assert torch.equal(again, mixed)


def test_config_needs_the_ssp_perturbation_and_a_fraction_in_0_1():
    with pytest.raises(InputError, match="needs the ssp perturbation"):
        TrainConfig(data=["d"], out="o", perturbation="gaussian", ssp_di_layer="_fc").validate()
    with pytest.raises(InputError, match="ssp_di_fraction must be in"):
        TrainConfig(data=["d"], out="o", ssp_di_layer="_fc", ssp_di_fraction=-0.1).validate()


def test_the_diverse_share_starts_near_the_clean_image_as_dim_does():
    x = torch.rand(4, 3, 24, 24)
    noise = torch.randn(4, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    one_step = PerturbationSettings(ssp_steps=1, ssp_step_size=1 / 255, ssp_di_fraction=1.0)
    perturbed = make_perturbation("ssp", one_step, features(0), di_feature_extractor=features(1))(x, noise)
    # start 2/255 away plus one step of 1/255: nowhere near the eps ball's boundary, unlike SSP's noise start
    assert (perturbed - x).abs().max() <= 3 / 255 + 1e-6
    assert (perturbed - x).abs().max() >= 1 / 255
