import pytest
import torch
from torch import nn

from nrp.attacks.through_defense import DefendedModel
from nrp.errors import InputError


class Quantise(nn.Module):
    """A non-differentiable defense: 4-level quantisation (zero gradient almost everywhere)."""

    def forward(self, x):
        return torch.round(x * 3) / 3


class Smooth(nn.Module):
    """A small differentiable purifier: a fixed 3x3 blur followed by a sigmoid squash."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False).to(dtype)
        nn.init.uniform_(self.conv.weight, 0.05, 0.2)

    def forward(self, x):
        return torch.sigmoid(4 * (self.conv(x) - 0.5))


def classifier(dtype=torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).to(dtype)


def input_gradient(model, x):
    x = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    return gradient


def test_forward_is_always_the_real_defended_prediction():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    net = classifier()
    expected = net(Quantise()(x))
    for mode, substitute in (("full", None), ("identity", None), ("substitute", Smooth())):
        assert torch.allclose(DefendedModel(Quantise(), net, mode, substitute)(x), expected)


def test_bpda_identity_gives_exactly_the_classifier_gradient_at_the_defended_input():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    net = classifier()
    bpda = input_gradient(DefendedModel(Quantise(), net, "identity"), x)
    assert torch.equal(bpda, input_gradient(net, Quantise()(x)))
    assert input_gradient(DefendedModel(Quantise(), net, "full"), x).abs().max() == 0  # why BPDA is needed


def test_full_mode_is_the_true_gradient_through_a_differentiable_purifier():
    net, purifier = classifier(), Smooth()
    model = DefendedModel(purifier, net, "full")
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-5)


def test_substitute_mode_uses_the_substitutes_jacobian():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    net, substitute = classifier(), Smooth()
    through_substitute = input_gradient(DefendedModel(Quantise(), net, "substitute", substitute), x)
    # Chain rule by hand: d/dx C(D(x)) with dD/dx taken from the substitute.
    defended = Quantise()(x).requires_grad_(True)
    (upstream,) = torch.autograd.grad(net(defended)[:, 1].sum(), defended)
    x_leaf = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(substitute(x_leaf), x_leaf, grad_outputs=upstream)
    assert torch.allclose(through_substitute, expected)


def test_eot_averages_the_logits_over_random_draws():
    class AddNoise(nn.Module):
        def forward(self, x):
            return (x + 0.1 * torch.randn_like(x)).clamp(0, 1)

    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    net = classifier()
    torch.manual_seed(1)
    averaged = DefendedModel(AddNoise(), net, eot_samples=4)(x)
    torch.manual_seed(1)
    draws = torch.stack([net(AddNoise()(x)) for _ in range(4)]).mean(0)
    assert torch.allclose(averaged, draws)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"gradient": "magic"}, "unknown gradient mode 'magic'"), ({"gradient": "substitute"}, "needs a substitute"), ({"eot_samples": 0}, "eot_samples must be >= 1")],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        DefendedModel(Quantise(), classifier(), **kwargs)
