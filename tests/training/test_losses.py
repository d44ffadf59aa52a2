"""Eq. 5-8 against independent implementations and known answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nrp.errors import InputError
from nrp.training import losses
from nrp.training.losses import (
    GAN_KINDS,
    LossWeights,
    critic_gan_loss,
    feature_loss,
    pixel_loss,
    purifier_gan_loss,
    purifier_objective,
)

REAL = [1.0, 2.0]
FAKE = [0.0, -1.0]


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# --- hand-written formulas (NumPy, no torch) --------------------------------------------------------------


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.log1p(np.exp(-z))


def log_one_minus_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.log1p(np.exp(z))


def numpy_relativistic(real, fake) -> tuple[float, float]:
    """(purifier loss, critic loss) of the symmetric relativistic average GAN, straight from the formulas."""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    fake_vs_real = fake - real.mean()  # logit of D_Ra(fake, real)
    real_vs_fake = real - fake.mean()  # logit of D_Ra(real, fake)
    purifier = (-log_sigmoid(fake_vs_real).mean() - log_one_minus_sigmoid(real_vs_fake).mean()) / 2
    critic = (-log_sigmoid(real_vs_fake).mean() - log_one_minus_sigmoid(fake_vs_real).mean()) / 2
    return float(purifier), float(critic)


def numpy_vanilla(real, fake) -> tuple[float, float]:
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    purifier = -log_sigmoid(fake).mean()
    critic = (-log_sigmoid(real).mean() - log_one_minus_sigmoid(fake).mean()) / 2
    return float(purifier), float(critic)


# --- Eq. 5 and 6 ------------------------------------------------------------------------------------------


def test_feature_loss_is_the_mean_absolute_error():
    torch.manual_seed(0)
    a, b = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(feature_loss(a, b), F.l1_loss(b, a))
    torch.testing.assert_close(feature_loss(a, b), (a - b).abs().mean())


def test_feature_loss_known_answer():
    clean = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    purified = torch.tensor([[1.0, 1.0], [0.0, 3.5]])
    assert feature_loss(clean, purified).item() == pytest.approx((1 + 0 + 2 + 0.5) / 4)


def test_pixel_loss_is_the_mean_squared_error():
    torch.manual_seed(0)
    purified, clean = torch.rand(2, 3, 7, 6), torch.rand(2, 3, 7, 6)
    torch.testing.assert_close(pixel_loss(purified, clean), F.mse_loss(purified, clean))
    torch.testing.assert_close(pixel_loss(purified, clean), ((purified - clean) ** 2).mean())


def test_pixel_loss_does_not_grow_with_image_size():
    small = pixel_loss(torch.full((1, 3, 8, 8), 0.5), torch.zeros(1, 3, 8, 8))
    large = pixel_loss(torch.full((4, 3, 64, 64), 0.5), torch.zeros(4, 3, 64, 64))
    assert small.item() == pytest.approx(0.25)
    assert large.item() == pytest.approx(0.25)


def test_both_reconstruction_losses_vanish_for_identical_inputs():
    x = torch.rand(2, 3, 5, 5)
    assert feature_loss(x, x.clone()).item() == 0.0
    assert pixel_loss(x, x.clone()).item() == 0.0


@pytest.mark.parametrize("loss", [feature_loss, pixel_loss])
def test_mismatched_shapes_raise(loss):
    with pytest.raises(InputError, match="same shape"):
        loss(torch.rand(2, 3, 4, 4), torch.rand(1, 3, 4, 4))


# --- Eq. 7: relativistic average GAN ----------------------------------------------------------------------


def test_relativistic_known_values_by_hand():
    # mean(real) = 1.5, mean(fake) = -0.5: fake - 1.5 = [-1.5, -2.5], real + 0.5 = [1.5, 2.5].
    # -log sigmoid(-z) = -log(1 - sigmoid(z)) = log(1 + e^z), so both purifier terms are mean(log(1 + e^{1.5, 2.5}))
    # and both critic terms mean(log(1 + e^{-1.5, -2.5})).
    purifier = (math.log(1 + math.exp(1.5)) + math.log(1 + math.exp(2.5))) / 2
    critic = (math.log(1 + math.exp(-1.5)) + math.log(1 + math.exp(-2.5))) / 2
    assert purifier == pytest.approx(2.1401, abs=1e-4)
    assert critic == pytest.approx(0.1401, abs=1e-4)  # log(1 + e^z) - log(1 + e^-z) = z, and mean z = 2
    assert purifier_gan_loss(t(REAL), t(FAKE)).item() == pytest.approx(purifier, rel=1e-12)
    assert critic_gan_loss(t(REAL), t(FAKE)).item() == pytest.approx(critic, rel=1e-12)


@pytest.mark.parametrize(
    "real, fake",
    [(REAL, FAKE), ([1.0, 2.0, 4.0], [0.0, -1.0]), ([0.3], [0.7, -2.0, 1.5]), ([-3.0, 5.0], [2.0, 2.5])],
)
def test_relativistic_matches_numpy(real, fake):
    purifier, critic = numpy_relativistic(real, fake)
    assert purifier_gan_loss(t(real), t(fake), "relativistic").item() == pytest.approx(purifier, rel=1e-12)
    assert critic_gan_loss(t(real), t(fake), "relativistic").item() == pytest.approx(critic, rel=1e-12)


def test_relativistic_first_purifier_term_is_eq_7():
    # Eq. 7 written literally, -log(sigma(C(P(x')) - E[C(x)])), plus ESRGAN's symmetric real-image term.
    real, fake = [1.0, 2.0, 4.0], [0.0, -1.0]
    eq7 = np.mean([-math.log(1 / (1 + math.exp(-(f - np.mean(real))))) for f in fake])
    symmetric = np.mean([-math.log(1 - 1 / (1 + math.exp(-(r - np.mean(fake))))) for r in real])
    assert purifier_gan_loss(t(real), t(fake)).item() == pytest.approx((eq7 + symmetric) / 2, rel=1e-12)


@pytest.mark.parametrize("real, fake", [(REAL, FAKE), ([1.0, 2.0, 4.0], [0.0, -1.0]), ([0.3], [0.7, -2.0, 1.5])])
def test_relativistic_symmetry(real, fake):
    torch.testing.assert_close(purifier_gan_loss(t(real), t(fake)), critic_gan_loss(t(fake), t(real)))


@pytest.mark.parametrize("real, fake", [(REAL, FAKE), ([1.0, 2.0, 4.0], [0.0, -1.0]), ([0.3], [0.7, -2.0, 1.5])])
def test_vanilla_matches_numpy(real, fake):
    purifier, critic = numpy_vanilla(real, fake)
    assert purifier_gan_loss(t(real), t(fake), "vanilla").item() == pytest.approx(purifier, rel=1e-12)
    assert critic_gan_loss(t(real), t(fake), "vanilla").item() == pytest.approx(critic, rel=1e-12)


def test_vanilla_known_values_by_hand():
    # purifier: mean(log(1 + e^{-f})) over f = [0, -1]; critic: (mean log(1 + e^{-r}) + mean log(1 + e^{f})) / 2.
    purifier = (math.log(2) + math.log(1 + math.e)) / 2
    critic = ((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2 + (math.log(2) + math.log(1 + math.exp(-1))) / 2) / 2
    assert purifier_gan_loss(t(REAL), t(FAKE), "vanilla").item() == pytest.approx(purifier, rel=1e-12)
    assert critic_gan_loss(t(REAL), t(FAKE), "vanilla").item() == pytest.approx(critic, rel=1e-12)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_perfect_separation_critic_loss_vanishes_purifier_loss_is_large(kind):
    real, fake = t([20.0, 25.0, 30.0]), t([-20.0, -25.0])
    assert critic_gan_loss(real, fake, kind).item() < 1e-8
    assert purifier_gan_loss(real, fake, kind).item() > 20


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_losses_stay_finite_for_huge_logits(kind):
    real, fake = torch.tensor([1e4, 2e4]), torch.tensor([-1e4, -3e4])
    for loss in (purifier_gan_loss(real, fake, kind), critic_gan_loss(real, fake, kind)):
        assert torch.isfinite(loss)
    # Here log(1 + e^z) = z to float precision: fake - mean(real) = [-2.5e4, -4.5e4], real - mean(fake) = [3e4, 4e4].
    assert purifier_gan_loss(real, fake).item() == pytest.approx((2.5e4 + 4.5e4 + 3e4 + 4e4) / 4, rel=1e-6)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_purifier_gradient_pushes_fake_logits_up(kind):
    fake = t(FAKE).requires_grad_()
    purifier_gan_loss(t(REAL), fake, kind).backward()
    assert (fake.grad < 0).all()


def test_critic_gradient_pushes_real_up_and_fake_down():
    real, fake = t(REAL).requires_grad_(), t(FAKE).requires_grad_()
    critic_gan_loss(real, fake).backward()
    assert (real.grad < 0).all()
    assert (fake.grad > 0).all()


def test_purifier_loss_accepts_detached_real_logits():
    real = t(REAL)  # no requires_grad, as computed with the critic frozen
    fake = t(FAKE).requires_grad_()
    loss = purifier_gan_loss(real, fake)
    loss.backward()
    assert fake.grad is not None and real.grad is None


@pytest.mark.parametrize("loss", [purifier_gan_loss, critic_gan_loss])
@pytest.mark.parametrize("kind", GAN_KINDS)
def test_gan_losses_pass_gradcheck(loss, kind):
    torch.manual_seed(0)
    real = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, f: loss(r, f, kind), (real, fake))


@pytest.mark.parametrize("loss", [purifier_gan_loss, critic_gan_loss])
def test_unknown_gan_kind_raises_with_the_known_kinds(loss):
    with pytest.raises(InputError, match="relativistic, vanilla"):
        loss(t(REAL), t(FAKE), "wgan")


# --- LossWeights ------------------------------------------------------------------------------------------


def test_default_weights_are_the_papers():
    weights = LossWeights()
    assert (weights.adversarial, weights.pixel, weights.feature) == (5e-3, 1e-2, 1.0)


@pytest.mark.parametrize("field", ["adversarial", "pixel", "feature"])
@pytest.mark.parametrize("value", [-1e-3, float("nan"), float("inf"), "1", None])
def test_invalid_weight_raises_naming_the_field(field, value):
    with pytest.raises(InputError, match=f"'{field}'"):
        LossWeights(**{field: value})


def test_zero_weights_are_allowed():
    weights = LossWeights(adversarial=0, pixel=0, feature=0)
    assert (weights.adversarial, weights.pixel, weights.feature) == (0.0, 0.0, 0.0)


# --- Eq. 8 ------------------------------------------------------------------------------------------------


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "clean": torch.rand(2, 3, 8, 8),
        "purified": torch.rand(2, 3, 8, 8),
        "clean_features": torch.randn(2, 4, 2, 2),
        "purified_features": torch.randn(2, 4, 2, 2),
        "real_logits": torch.randn(2),
        "fake_logits": torch.randn(2),
    }


@pytest.mark.parametrize("gan", GAN_KINDS)
def test_objective_total_is_the_weighted_sum(batch, gan):
    weights = LossWeights(adversarial=0.3, pixel=0.7, feature=1.3)
    terms = purifier_objective(weights, gan=gan, **batch)
    assert set(terms) == {"total", "adversarial", "pixel", "feature"}
    adversarial = purifier_gan_loss(batch["real_logits"], batch["fake_logits"], gan)
    pixel = F.mse_loss(batch["purified"], batch["clean"])
    feature = F.l1_loss(batch["purified_features"], batch["clean_features"])
    torch.testing.assert_close(terms["adversarial"], adversarial)
    torch.testing.assert_close(terms["pixel"], pixel)
    torch.testing.assert_close(terms["feature"], feature)
    torch.testing.assert_close(terms["total"], 0.3 * adversarial + 0.7 * pixel + 1.3 * feature)


def test_objective_default_weights(batch):
    terms = purifier_objective(LossWeights(), **batch)
    expected = 5e-3 * terms["adversarial"] + 1e-2 * terms["pixel"] + 1.0 * terms["feature"]
    torch.testing.assert_close(terms["total"], expected)


def test_objective_gradient_reaches_purified_through_every_term(batch):
    purified = batch["purified"].clone().requires_grad_()
    fake = batch["fake_logits"].clone().requires_grad_()
    features = batch["purified_features"].clone().requires_grad_()
    terms = purifier_objective(
        LossWeights(), **{**batch, "purified": purified, "fake_logits": fake, "purified_features": features}
    )
    terms["total"].backward()
    assert purified.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0 and features.grad.abs().sum() > 0


def _fail(*args, **kwargs):
    raise AssertionError("a term with weight 0 was computed")


@pytest.mark.parametrize(
    "name, function, emptied",
    [
        ("adversarial", "purifier_gan_loss", ("real_logits", "fake_logits")),
        ("pixel", "pixel_loss", ()),
        ("feature", "feature_loss", ("clean_features", "purified_features")),
    ],
)
def test_zero_weight_terms_are_exact_zeros_and_not_computed(batch, monkeypatch, name, function, emptied):
    monkeypatch.setattr(losses, function, _fail)
    inputs = {**batch, **{key: None for key in emptied}}
    weights = LossWeights(**{name: 0.0})
    terms = purifier_objective(weights, **inputs)
    assert terms[name].item() == 0.0 and terms[name].shape == ()
    others = [k for k in ("adversarial", "pixel", "feature") if k != name]
    monkeypatch.undo()
    full = purifier_objective(LossWeights(), **batch)
    expected = sum(getattr(weights, k) * full[k] for k in others)
    torch.testing.assert_close(terms["total"], expected)


def test_all_weights_zero_gives_a_zero_total(batch):
    inputs = {**batch, "real_logits": None, "fake_logits": None, "clean_features": None, "purified_features": None}
    terms = purifier_objective(LossWeights(0, 0, 0), **inputs)
    assert all(value.item() == 0.0 for value in terms.values())


def test_objective_without_logits_needs_zero_adversarial_weight(batch):
    inputs = {**batch, "real_logits": None, "fake_logits": None}
    with pytest.raises(InputError, match="adversarial weight"):
        purifier_objective(LossWeights(), **inputs)
    assert purifier_objective(LossWeights(adversarial=0), **inputs)["adversarial"].item() == 0.0


def test_objective_without_features_needs_zero_feature_weight(batch):
    with pytest.raises(InputError, match="feature weight"):
        purifier_objective(LossWeights(), **{**batch, "clean_features": None})


def test_objective_negative_weight_raises(batch):
    with pytest.raises(InputError, match="'pixel'"):
        purifier_objective(LossWeights(pixel=-0.01), **batch)


@pytest.mark.parametrize("adversarial", [0.0, 5e-3])
def test_objective_unknown_gan_raises(batch, adversarial):
    with pytest.raises(InputError, match="relativistic, vanilla"):
        purifier_objective(LossWeights(adversarial=adversarial), gan="hinge", **batch)
