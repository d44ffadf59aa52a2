"""The shared loop and its named attacks: bounds, targets, each option's effect, labels, side effects, checks."""

import inspect

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nrp.attacks import ATTACKS, dim, fgsm, i_fgsm, iterative_attack, mi_fgsm, pgd, ti_fgsm
from nrp.errors import InputError

CLASSIFIER_ATTACKS = sorted(name for name in ATTACKS if name not in ("ssp", "fff", "cda"))
FEATURE_LEVEL = {"fia", "naa", "ilpd", "ila"}  # untargeted by design; they attack a named layer
UNTARGETED = FEATURE_LEVEL | {"autoattack", "apgd"}
TARGETED_ATTACKS = sorted(set(CLASSIFIER_ATTACKS) - UNTARGETED)


def attack(name, model, x, y=None, **options):
    """``ATTACKS[name]`` with the tiny classifier's second convolution as the layer of feature-level attacks."""
    function = ATTACKS[name]
    parameters = inspect.signature(function).parameters
    if "layer" in parameters:
        options["layer"] = "3"
    if "generator" not in parameters:
        options.pop("generator", None)
    return function(model, x, y, **options)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_attack(model, x, y, eps, step_size, steps, momentum=0.0, kernel=None, targeted=False):
    """MI-FGSM / TI / I-FGSM written out plainly from the equations, independent of the library's loop."""
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(-loss if targeted else loss, x_adv)[0]
        if kernel is not None:
            k = kernel.numel()
            grad = F.conv2d(grad, torch.outer(kernel, kernel).expand(3, 1, k, k), padding=k // 2, groups=3)
        if momentum:
            g = momentum * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)  # the L1 norm of Eq. 6
            grad = g
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv


@pytest.mark.parametrize("name", sorted(set(CLASSIFIER_ATTACKS) - {"autoattack", "apgd"}))  # float32 only: test_autoattack.py
@pytest.mark.parametrize("eps", [0.0, 1 / 255, 8 / 255, 16 / 255, 0.5])
def test_every_attack_stays_in_the_eps_ball_and_the_unit_interval(name, eps, classifier64, make_images):
    x = make_images(0, dtype=torch.float64)
    x_adv = attack(name, classifier64, x, eps=eps, generator=seeded())
    assert x_adv.dtype == torch.float64 and x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max().item() <= eps + 1e-12
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    if eps >= 8 / 255:  # and it does move (10 steps of 1.6/255 go no further than 16/255)
        assert (x_adv - x).abs().max().item() > min(eps, 16 / 255) / 2


@pytest.mark.parametrize("name", CLASSIFIER_ATTACKS)
def test_every_untargeted_attack_raises_the_loss_of_the_predicted_class(name, classifier, make_images):
    x = make_images(1)
    predicted = classifier(x).argmax(1)
    x_adv = attack(name, classifier, x, eps=8 / 255, generator=seeded())
    before = F.cross_entropy(classifier(x), predicted, reduction="none")
    after = F.cross_entropy(classifier(x_adv), predicted, reduction="none")
    assert (after > before).all()


@pytest.mark.parametrize("name", TARGETED_ATTACKS)
def test_every_targeted_attack_raises_the_target_log_probability(name, classifier, make_images):
    x = make_images(2)
    target = torch.tensor([3, 7, 0, 9])
    x_adv = ATTACKS[name](classifier, x, eps=16 / 255, target=target, generator=seeded())
    before = F.log_softmax(classifier(x), 1).gather(1, target[:, None])
    after = F.log_softmax(classifier(x_adv), 1).gather(1, target[:, None])
    assert (after > before).all()


def test_targeted_attacks_reach_their_targets_on_a_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)).eval()
    x = 0.25 + 0.5 * torch.rand(6, 3, 8, 8)
    y = model(x).argmax(1)
    target = (y + 1 + torch.arange(6) % 9) % 10
    options = dict(eps=64 / 255, steps=40, step_size=4 / 255)
    assert torch.equal(model(pgd(model, x, y, target=target, **options)).argmax(1), target)
    reached = model(pgd(model, x, y, target="random", generator=seeded(4), **options)).argmax(1)
    assert (reached != y).all()  # random targets are never the true labels


def test_random_targets_are_drawn_after_the_start_from_the_same_generator(classifier, make_images):
    x = make_images(3)
    runs = [pgd(classifier, x, target="random", generator=seeded(seed)) for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_i_fgsm_matches_a_plain_transcription(classifier64, make_images):
    x = make_images(4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    expected = reference_attack(classifier64, x, y, 16 / 255, 1.6 / 255, 10)
    assert torch.allclose(i_fgsm(classifier64, x, y), expected, atol=1e-12, rtol=0)


def test_targeted_i_fgsm_matches_a_plain_transcription(classifier64, make_images):
    x = make_images(5, dtype=torch.float64)
    target = torch.tensor([5, 6, 7, 8])
    expected = reference_attack(classifier64, x, target, 16 / 255, 1.6 / 255, 10, targeted=True)
    assert torch.allclose(i_fgsm(classifier64, x, target=target), expected, atol=1e-12, rtol=0)


def test_momentum_matches_eq_6_with_the_l1_norm(classifier64, make_images):
    x = make_images(6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    for momentum in (0.5, 1.0):
        expected = reference_attack(classifier64, x, y, 16 / 255, 1.6 / 255, 10, momentum=momentum)
        assert torch.allclose(mi_fgsm(classifier64, x, y, momentum=momentum), expected, atol=1e-12, rtol=0)


def test_momentum_zero_is_i_fgsm_and_momentum_one_is_not(classifier64, make_images):
    x = make_images(7, dtype=torch.float64)
    plain = i_fgsm(classifier64, x)
    assert torch.equal(mi_fgsm(classifier64, x, momentum=0.0), plain)
    assert not torch.equal(mi_fgsm(classifier64, x, momentum=1.0), plain)


def test_a_1x1_smoothing_kernel_is_the_plain_attack_and_a_wide_one_is_not(classifier64, make_images):
    x = make_images(8, dtype=torch.float64)
    options = dict(eps=16 / 255, step_size=1.6 / 255, steps=10, momentum=1.0)
    plain = iterative_attack(classifier64, x, **options)
    assert torch.equal(iterative_attack(classifier64, x, ti_kernel=1, **options), plain)
    assert not torch.equal(iterative_attack(classifier64, x, ti_kernel=7, **options), plain)
    assert torch.equal(ti_fgsm(classifier64, x, ti_kernel=1), fgsm(classifier64, x))


def test_smoothing_matches_a_depthwise_convolution_of_the_gradient(classifier64, make_images):
    from nrp.attacks import gaussian_kernel1d

    x = make_images(9, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    kernel = gaussian_kernel1d(5, dtype=torch.float64)
    expected = reference_attack(classifier64, x, y, 16 / 255, 1.6 / 255, 10, momentum=1.0, kernel=kernel)
    ours = iterative_attack(classifier64, x, y, eps=16 / 255, step_size=1.6 / 255, steps=10, momentum=1.0, ti_kernel=5)
    assert torch.allclose(ours, expected, atol=1e-12, rtol=0)


def test_ti_fgsm_perturbation_is_smoother_than_fgsm(classifier64, make_images):
    x = torch.full((4, 3, 32, 32), 0.5, dtype=torch.float64)

    def roughness(x_adv):  # share of horizontally adjacent pixels whose perturbation flips sign
        delta = (x_adv - x).sign()
        return (delta[..., 1:] != delta[..., :-1]).float().mean()

    assert roughness(ti_fgsm(classifier64, x, ti_kernel=15)) < 0.5 * roughness(fgsm(classifier64, x))


def test_diversity_probability_zero_is_the_plain_attack_and_one_is_not(classifier64, make_images):
    x = make_images(10, dtype=torch.float64)
    plain = mi_fgsm(classifier64, x)
    assert torch.equal(dim(classifier64, x, diversity_prob=0.0, generator=seeded()), plain)
    assert not torch.equal(dim(classifier64, x, diversity_prob=1.0, generator=seeded()), plain)


def test_diversity_is_reproducible_under_a_generator_and_varies_across_seeds(classifier, make_images):
    x = make_images(11)
    runs = [dim(classifier, x, generator=seeded(seed)) for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_diversity_feeds_the_model_resized_padded_inputs_with_probability_p(classifier, make_images):
    shapes = []
    classifier.register_forward_hook(lambda module, inputs, output: shapes.append(inputs[0]))
    x = 0.1 + 0.8 * torch.rand(2, 3, 20, 20)  # no zeros, so padded inputs are the ones with zeros
    dim(classifier, x, y=torch.tensor([0, 1]), steps=200, diversity_prob=0.7, generator=seeded(3))
    transformed = [inputs for inputs in shapes if inputs.shape[-1] != 20 or (inputs == 0).any()]
    assert len(shapes) == 200 and 0.6 < len(transformed) / 200 < 0.8
    assert all(inputs.shape[-2:] == (20, 20) for inputs in shapes)  # the default 0.9 pads back to the input size


def test_an_enlarging_diversity_scale_feeds_larger_inputs(classifier, make_images):
    sizes = set()
    classifier.register_forward_hook(lambda module, inputs, output: sizes.add(inputs[0].shape[-1]))
    dim(classifier, make_images(13, shape=(2, 3, 20, 20)), torch.tensor([0, 1]), steps=20, diversity_prob=1.0, diversity_scale=1.5,
        generator=seeded())
    assert sizes == {30}


def test_pgd_starts_inside_the_ball_at_random_and_without_it_is_i_fgsm(classifier64, make_images):
    x = make_images(14, dtype=torch.float64)
    runs = [pgd(classifier64, x, generator=seeded(seed)) for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    no_start = pgd(classifier64, x, random_start=False, step_size=1.6 / 255)
    assert torch.equal(no_start, i_fgsm(classifier64, x))


def test_the_uniform_start_is_uniform_in_the_ball(make_images):
    x = torch.full((8, 3, 16, 16), 0.5, dtype=torch.float64)
    start = pgd(lambda inputs: torch.zeros(inputs.shape[0], 10, dtype=inputs.dtype) + inputs.sum() * 0,
                x, eps=8 / 255, steps=1, step_size=1e-9, generator=seeded())
    noise = (start - x) * 255 / 8
    assert noise.abs().max() <= 1 + 1e-6
    assert abs(noise.mean().item()) < 0.02 and abs(noise.var().item() - 1 / 3) < 0.02


@pytest.mark.parametrize("name", ["fgsm", "pgd", "dim", "mi_ti_fgsm", "fia", "naa", "ilpd", "ila", "bsr", "admix"])
def test_no_labels_means_the_models_own_predictions(name, classifier, make_images):
    x = make_images(15)
    predicted = classifier(x).argmax(1)
    assert torch.equal(attack(name, classifier, x, generator=seeded()), attack(name, classifier, x, predicted, generator=seeded()))


@pytest.mark.parametrize("name", CLASSIFIER_ATTACKS)
@pytest.mark.parametrize("train", [False, True])
def test_attacks_leave_the_mode_and_the_parameters_gradients_alone(name, train, classifier, make_images):
    classifier.train(train)
    modes = [module.training for module in classifier.modules()]
    attack(name, classifier, make_images(16), generator=seeded())
    assert [module.training for module in classifier.modules()] == modes
    assert all(parameter.grad is None for parameter in classifier.parameters())


def test_attacks_work_inside_no_grad_and_leave_the_input_alone(classifier, make_images):
    x = make_images(17)
    copy = x.clone()
    with torch.no_grad():
        x_adv = mi_fgsm(classifier, x)
    assert torch.equal(x, copy) and not x.requires_grad
    assert torch.equal(x_adv, mi_fgsm(classifier, x))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(eps=1.5), r"eps must be in \[0, 1\].*got 1.5"),
        (dict(eps=-0.1), r"eps must be in \[0, 1\]"),
        (dict(steps=0), r"steps must be an integer >= 1, got 0"),
        (dict(steps=2.5), r"steps must be an integer >= 1, got 2.5"),
        (dict(step_size=-1 / 255), r"step_size must be in \[0, 1\]"),
        (dict(momentum=-1.0), r"momentum must be >= 0, got -1.0"),
        (dict(diversity_prob=1.2), r"diversity_prob must be in \[0, 1\], got 1.2"),
        (dict(diversity_scale=1.0), r"diversity_scale must be > 0 and != 1"),
        (dict(diversity_prob=0.5, diversity_scale=1.01), r"diversity_scale 1.01 leaves no room to resize a side of 16 px"),
        (dict(ti_kernel=4), r"ti_kernel must be an odd integer >= 1 \(or None\), got 4"),
        (dict(ti_kernel=0), r"ti_kernel must be an odd integer"),
        (dict(random_start="gaussian"), r"unknown random_start 'gaussian'; known: None, uniform, sign"),
        (dict(random_start="uniform", start_size=0.5), r"start_size must be in \[0, eps\]"),
        (dict(target="least-likely"), r"target must be None, a tensor of labels or 'random'"),
        (dict(target=torch.tensor([1, 2])), r"target must be integer class indices of shape \(4,\), got \(2,\)"),
        (dict(target=torch.tensor([1, 2, 3, 10])), r"target must be class indices in \[0, 10\).*got values in \[1, 10\]"),
        (dict(y=torch.tensor([0.0, 1.0, 2.0, 3.0])), r"y must be integer class indices of shape \(4,\)"),
        (dict(y=torch.tensor([-1, 0, 1, 2])), r"y must be class indices in \[0, 10\)"),
    ],
)
def test_bad_arguments_raise_input_errors_naming_the_value(options, message, classifier, make_images):
    arguments = dict(eps=8 / 255, step_size=1 / 255, steps=2) | options
    with pytest.raises(InputError, match=message):
        iterative_attack(classifier, make_images(18), **arguments)


def test_images_outside_the_unit_interval_are_refused(classifier):
    with pytest.raises(InputError, match=r"images must lie in \[0, 1\].*normalisation belongs inside the model"):
        fgsm(classifier, torch.randn(2, 3, 16, 16))
    with pytest.raises(InputError, match=r"shape \(B, C, H, W\), got \(3, 16, 16\)"):
        fgsm(classifier, torch.rand(3, 16, 16))


def test_random_targets_need_two_classes(make_images):
    one_class = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 1))
    with pytest.raises(InputError, match=r"num_classes >= 2, got 1"):
        pgd(one_class, make_images(19), target="random")
