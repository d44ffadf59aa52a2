import pytest
import torch
from torch import nn

from nrp.attacks import fgsm, r_fgsm
from nrp.errors import InputError


@pytest.fixture
def linear_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10)).eval()


def test_fgsm_equals_torchattacks_with_the_same_labels(linear_classifier):
    torchattacks = pytest.importorskip("torchattacks")
    x = torch.rand(4, 3, 16, 16)
    labels = torch.tensor([0, 3, 5, 9])
    linear_classifier(x)  # materialise the lazy layer
    ours = fgsm(linear_classifier, x, labels, eps=8 / 255)
    theirs = torchattacks.FGSM(linear_classifier, eps=8 / 255)(x, labels)
    assert torch.allclose(ours, theirs, atol=1e-7)


def test_label_free_fgsm_attacks_the_models_own_prediction(linear_classifier):
    x = torch.rand(4, 3, 16, 16)
    predicted = linear_classifier(x).argmax(1)
    assert torch.equal(fgsm(linear_classifier, x, eps=4 / 255), fgsm(linear_classifier, x, predicted, eps=4 / 255))
    x_adv = fgsm(linear_classifier, x, eps=4 / 255)
    loss = nn.functional.cross_entropy
    assert loss(linear_classifier(x_adv), predicted) > loss(linear_classifier(x), predicted)
    assert (x_adv - x).abs().max() <= 4 / 255 + 1e-7 and 0 <= x_adv.min() and x_adv.max() <= 1


def test_label_free_fgsm_runs_the_model_once(classifier, make_images):
    # The training loop's FGSP perturbation calls fgsm(classifier, x, eps=eps): one forward pass, not two.
    calls = []
    classifier.register_forward_hook(lambda module, inputs, output: calls.append(1))
    fgsm(classifier, make_images(0))
    assert len(calls) == 1


def test_fgsm_moves_each_pixel_by_eps_along_the_gradient_sign(classifier64, make_images):
    x = make_images(1, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    x_in = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(nn.functional.cross_entropy(classifier64(x_in), y), x_in)
    expected = (x + 8 / 255 * gradient.sign()).clamp(0, 1)
    assert torch.allclose(fgsm(classifier64, x, y, eps=8 / 255), expected, atol=1e-15, rtol=0)
    assert (gradient != 0).float().mean() > 0.9  # the check above is not about zero gradients


def test_fgsm_refuses_eps_outside_the_unit_interval(linear_classifier):
    with pytest.raises(InputError, match=r"eps must be in \[0, 1\]"):
        fgsm(linear_classifier, torch.rand(1, 3, 16, 16), eps=16)


def reference_r_fgsm(model, x, y, eps, alpha, noise):
    """Tramer et al.'s Eq. 7 written out: random sign step, then a gradient step of eps - alpha."""
    x_r = (x + alpha * noise.sign()).clamp(0, 1).requires_grad_(True)
    nn.functional.cross_entropy(model(x_r), y).backward()
    return (x_r + (eps - alpha) * x_r.grad.sign()).clamp(0, 1).detach()


def test_r_fgsm_equals_a_transcription_of_its_equation(classifier64, make_images):
    x = make_images(2, dtype=torch.float64)
    y = torch.tensor([1, 2, 3, 4])
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = reference_r_fgsm(classifier64.requires_grad_(False), x, y, 16 / 255, (16 / 3) / 255, noise)
    ours = r_fgsm(classifier64, x, y, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ours, expected, atol=1e-12, rtol=0)


def test_r_fgsm_takes_alpha_at_random_and_eps_minus_alpha_along_the_gradient(classifier64):
    x = torch.full((4, 3, 16, 16), 0.5, dtype=torch.float64)
    x_adv = r_fgsm(classifier64, x, eps=16 / 255, alpha=4 / 255, generator=torch.Generator().manual_seed(0))
    steps = ((x_adv - x) * 255).abs()
    # |+-4 +- 12| is 8 or 16 (0-255 units); 4 where the gradient is exactly zero.
    assert set(steps.round(decimals=6).unique().tolist()) <= {4.0, 8.0, 16.0}
    assert (steps.round(decimals=6) == 16).any() and (steps.round(decimals=6) == 8).any()


def test_r_fgsm_is_reproducible_and_refuses_alpha_beyond_eps(classifier, make_images):
    x = make_images(3)
    runs = [r_fgsm(classifier, x, generator=torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    with pytest.raises(InputError, match=r"alpha must be in \[0, eps\]"):
        r_fgsm(classifier, x, eps=4 / 255, alpha=8 / 255)
