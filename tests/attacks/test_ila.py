"""ILA (Huang et al., ICCV 2019) against the paper's projection loss written out independently, and known answers.

torchattack has no ILA, so the checks are: the ILA phase equals I-FGSM, written out here, on the ILAP loss
``(f(x_adv) - f(x)) . (f(x') - f(x)) / ||f(x') - f(x)||^2`` differentiated by autograd in float64; on a layer that
is the identity the ILA phase walks to ``x + eps * sign(x' - x)`` (a known answer); the default baseline is
MI-FGSM with the call's settings.
"""

import pytest
import torch
from torch import nn

from nrp.attacks import LayerOutput, ila, mi_fgsm
from nrp.errors import InputError

EPS = 16 / 255
LABELS = torch.tensor([0, 3, 5, 9])
LAYER = "3"  # the tiny classifier's second convolution


@pytest.fixture
def x(make_images):
    return make_images(0, dtype=torch.float64)


@pytest.fixture
def classifier64(make_classifier):
    return make_classifier(torch.float64)


def test_the_ila_phase_is_i_fgsm_on_the_ilap_loss(classifier64, x):
    # Three I-FGSM steps written out here on the paper's loss, normalisation by ||d||^2 included.
    baseline = mi_fgsm(classifier64, x, LABELS)
    step_size = EPS / 4
    ours = ila(classifier64, x, LABELS, layer=LAYER, baseline=baseline, ila_steps=3, step_size=step_size)
    features = LayerOutput(classifier64, LAYER)
    with torch.no_grad():
        clean, adversarial = features(x), features(baseline)
    direction = (adversarial - clean).flatten(1)
    expected = x.clone()
    for _ in range(3):
        current = expected.clone().requires_grad_(True)
        ilap = (((features(current) - clean).flatten(1) * direction).sum(1) / direction.pow(2).sum(1)).sum()
        (gradient,) = torch.autograd.grad(ilap, current)
        assert gradient.abs().min() > 0  # no sign is decided by a zero gradient
        expected = torch.min(torch.max(expected + step_size * gradient.sign(), x - EPS), x + EPS).clamp(0, 1)
    assert torch.allclose(ours, expected, atol=1e-12, rtol=0)


def test_on_an_identity_layer_the_ila_phase_walks_along_the_baseline_perturbation(x):
    # The layer's features are the input itself, so d = x' - x, the loss is linear in x_adv and every step is
    # step_size * sign(x' - x) until the eps ball stops it.
    model = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Linear(3 * 16 * 16, 10).double())
    generator = torch.Generator().manual_seed(1)
    baseline = (x + EPS * torch.randn(x.shape, generator=generator, dtype=x.dtype).sign()).clamp(0, 1)
    baseline[:, :, 5:7] = x[:, :, 5:7]  # no baseline perturbation here: ILA leaves those pixels alone
    ours = ila(model, x, LABELS, layer="0", baseline=baseline, ila_steps=12, step_size=EPS / 10)
    expected = (x + EPS * (baseline - x).sign()).clamp(0, 1)
    assert torch.allclose(ours, expected, atol=1e-12, rtol=0)
    assert torch.equal(ours[:, :, 5:7], x[:, :, 5:7])


def test_the_default_baseline_is_mi_fgsm_with_the_calls_settings(classifier64, x):
    settings = {"eps": 8 / 255, "steps": 4, "step_size": 2 / 255, "momentum": 0.5}
    default = ila(classifier64, x, LABELS, layer=LAYER, ila_steps=3, **settings)
    explicit = ila(classifier64, x, LABELS, layer=LAYER, ila_steps=3, baseline=mi_fgsm(classifier64, x, LABELS, **settings),
                   **settings)
    assert torch.equal(default, explicit)
    assert (default - x).abs().max() <= 8 / 255 + 1e-12
    assert not torch.equal(default, ila(classifier64, x, LABELS, layer=LAYER, ila_steps=3, **{**settings, "steps": 1}))


def test_ila_transfers_its_baseline_direction(classifier64, x):
    # ILA should raise the layer's perturbation along d: the projection of its own perturbation exceeds that of
    # a random sign perturbation of the same size (which projects to about zero).
    features = LayerOutput(classifier64, LAYER)
    baseline = mi_fgsm(classifier64, x, LABELS)
    ours = ila(classifier64, x, LABELS, layer=LAYER, baseline=baseline)
    with torch.no_grad():
        clean = features(x)
        direction = (features(baseline) - clean).flatten(1)
        along = ((features(ours) - clean).flatten(1) * direction).sum(1)
        noise = (x + EPS * torch.randn_like(x).sign()).clamp(0, 1)
        along_noise = ((features(noise) - clean).flatten(1) * direction).sum(1)
    assert (along > along_noise).all()
    assert (along > 0).all()


@pytest.mark.parametrize("bad, message", [
    ({"ila_steps": 0}, "ila_steps"),
    ({"baseline": torch.zeros(1, 3, 16, 16)}, r"baseline must be adversarial images shaped like x \(4, 3, 16, 16\)"),
    ({"baseline": "mi_fgsm"}, "baseline must be adversarial images shaped like x"),
])
def test_bad_arguments_are_refused_in_one_line(classifier64, x, bad, message):
    with pytest.raises(InputError, match=message):
        ila(classifier64, x, LABELS, layer=LAYER, **bad)


def test_an_unknown_layer_is_refused(classifier64, x):
    with pytest.raises(InputError, match="layer"):
        ila(classifier64, x, LABELS, layer="99", baseline=x)
