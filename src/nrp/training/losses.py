"""The purifier's training losses, Eq. 5-8 of Naseer et al. (CVPR 2020), and the critic's matching GAN loss.

``L_P = alpha * L_adv + gamma * L_img + lambda * L_feat`` (Eq. 8), where ``L_feat`` is the mean absolute error
between feature maps of the clean and the purified image (Eq. 5), ``L_img`` the pixel distance to the clean image
(Eq. 6) and ``L_adv`` the relativistic average GAN loss (Eq. 7; Jolicoeur-Martineau 2018) measured by the critic
C_phi. The relativistic losses use the symmetric form ESRGAN uses for both networks, built on
``D_Ra(a, b) = sigmoid(C(a) - mean(C(b)))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from nrp.errors import InputError

GAN_KINDS = ("relativistic", "vanilla")
BatchMean = Callable[[torch.Tensor], torch.Tensor]


def _check_kind(kind: str) -> None:
    if kind not in GAN_KINDS:
        raise InputError(f"unknown GAN loss '{kind}'; known: {', '.join(GAN_KINDS)}")


def _check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    # Broadcasting two differently shaped maps would silently compare the wrong elements.
    if a.shape != b.shape:
        raise InputError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def feature_loss(clean_features: torch.Tensor, purified_features: torch.Tensor) -> torch.Tensor:
    """Feature loss ``L_feat`` of Eq. 5: mean absolute error between two feature maps.

    Args:
        clean_features: ``F_psi(x)``, any shape ``(B, C, h, w)``; a target, usually computed without gradients.
        purified_features: ``F_psi(P_theta(x'))``, the same shape.

    Returns:
        A scalar >= 0: the mean of ``|clean_features - purified_features|`` over all elements.
    """
    _check_same_shape("clean_features", clean_features, "purified_features", purified_features)
    return F.l1_loss(_full_precision(purified_features), _full_precision(clean_features))


def pixel_loss(purified: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Pixel loss ``L_img`` of Eq. 6, implemented as the mean squared error.

    Eq. 6 writes the L2 norm ``||P_theta(x') - x||_2``; this takes the mean of the squared differences instead
    (as BasicSR's MSE pixel loss, which the authors' training was built on), so its scale does not depend on the
    image size or the batch size and the paper's weight ``gamma = 1e-2`` keeps its meaning at any crop.

    Args:
        purified: ``P_theta(x')``, ``(B, 3, H, W)`` in [0, 1].
        clean: ``x``, ``(B, 3, H, W)`` in [0, 1].

    Returns:
        A scalar in [0, 1] for inputs in [0, 1].
    """
    _check_same_shape("purified", purified, "clean", clean)
    return F.mse_loss(_full_precision(purified), _full_precision(clean))


def _full_precision(values: torch.Tensor) -> torch.Tensor:
    """``values`` in float32 at least: losses are never taken in half precision, even under autocast."""
    return values.to(torch.promote_types(values.dtype, torch.float32))


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against a constant target, stable for large logits."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def purifier_gan_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "relativistic", batch_mean: BatchMean = torch.mean
) -> torch.Tensor:
    """Adversarial loss ``L_adv`` of the purifier (Eq. 7): how far the critic is from taking purified as clean.

    ``relativistic`` (the paper's choice), with ``D_Ra(a, b) = sigmoid(C(a) - mean(C(b)))``::

        L = ( BCE(D_Ra(fake, real), 1) + BCE(D_Ra(real, fake), 0) ) / 2

    whose first term is Eq. 7, ``-log sigmoid(C(P(x')) - E[C(x)])``; the second, from ESRGAN's symmetric form,
    also lets the gradient reach the purifier through the real images' relative logits.
    ``vanilla`` (the ablation of Fig. 5): ``L = BCE(sigmoid(C(fake)), 1)``; ``real_logits`` is then unused.

    Args:
        real_logits: ``C_phi(x)`` for clean images, shape ``(B_r,)``. The caller computes them with the critic
            frozen; they carry no gradient requirement (detached or not, only ``fake_logits`` matter for the
            purifier's update).
        fake_logits: ``C_phi(P_theta(x'))`` for purified images, shape ``(B_f,)``, with gradients to the purifier.
        kind: one of :data:`GAN_KINDS`.
        batch_mean: how ``E[C(.)]`` is taken: ``torch.mean`` on one process; under DDP
            :func:`nrp.distributed.global_mean`, the mean over the global batch (with its gradient).

    Returns:
        A scalar >= 0 (natural log units); large when the critic separates clean from purified. Computed in
        float32 (at least) whatever the logits' dtype.
    """
    _check_kind(kind)
    real_logits, fake_logits = _full_precision(real_logits), _full_precision(fake_logits)
    if kind == "vanilla":
        return _bce(fake_logits, 1.0)
    fake_vs_real = fake_logits - batch_mean(real_logits)
    real_vs_fake = real_logits - batch_mean(fake_logits)
    return (_bce(fake_vs_real, 1.0) + _bce(real_vs_fake, 0.0)) / 2


def critic_gan_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "relativistic", batch_mean: BatchMean = torch.mean
) -> torch.Tensor:
    """The critic's loss: tell clean images from purified ones (the counterpart of Eq. 7).

    ``relativistic``: ``L = ( BCE(D_Ra(real, fake), 1) + BCE(D_Ra(fake, real), 0) ) / 2``, so that
    ``critic_gan_loss(r, f) == purifier_gan_loss(f, r)``.
    ``vanilla``: ``L = ( BCE(sigmoid(C(real)), 1) + BCE(sigmoid(C(fake)), 0) ) / 2``.

    Args:
        real_logits: ``C_phi(x)`` for clean images, shape ``(B_r,)``.
        fake_logits: ``C_phi(P_theta(x').detach())`` for purified images, shape ``(B_f,)``.
        kind: one of :data:`GAN_KINDS`.
        batch_mean: as for :func:`purifier_gan_loss`.

    Returns:
        A scalar >= 0 (natural log units); near 0 when the critic separates the two perfectly. Float32.
    """
    _check_kind(kind)
    real_logits, fake_logits = _full_precision(real_logits), _full_precision(fake_logits)
    if kind == "vanilla":
        return (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0)) / 2
    real_vs_fake = real_logits - batch_mean(fake_logits)
    fake_vs_real = fake_logits - batch_mean(real_logits)
    return (_bce(real_vs_fake, 1.0) + _bce(fake_vs_real, 0.0)) / 2


@dataclass
class LossWeights:
    """Weights of the three terms of Eq. 8 (Section 4.1 defaults). Any may be 0 to ablate its term.

    Attributes:
        adversarial: alpha, weight of the relativistic loss ``L_adv`` (5e-3).
        pixel: gamma, weight of the pixel loss ``L_img`` (1e-2).
        feature: lambda, weight of the feature loss ``L_feat`` (1).
    """

    adversarial: float = 5e-3
    pixel: float = 1e-2
    feature: float = 1.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"loss weight '{field.name}' must be a finite number >= 0, got {value!r}")
            setattr(self, field.name, float(value))


def purifier_objective(
    weights: LossWeights,
    *,
    clean: torch.Tensor,
    purified: torch.Tensor,
    clean_features: torch.Tensor | None,
    purified_features: torch.Tensor | None,
    real_logits: torch.Tensor | None = None,
    fake_logits: torch.Tensor | None = None,
    gan: str = "relativistic",
    batch_mean: BatchMean = torch.mean,
) -> dict[str, torch.Tensor]:
    """The purifier's objective ``L_P`` of Eq. 8 and its three terms.

    A term whose weight is 0 is not computed: its entry is a zero scalar and its inputs may be ``None`` (the
    logits when ``weights.adversarial == 0``, the features when ``weights.feature == 0``), so an ablation costs
    nothing.

    Args:
        weights: alpha, gamma, lambda.
        clean: ``x``, ``(B, 3, H, W)`` in [0, 1].
        purified: ``P_theta(x')``, ``(B, 3, H, W)`` in [0, 1] (or the unclamped purifier output).
        clean_features: ``F_psi(x)``; see :func:`feature_loss`.
        purified_features: ``F_psi(P_theta(x'))``.
        real_logits: ``C_phi(x)``, ``(B,)``, computed with the critic frozen; no gradient requirement.
        fake_logits: ``C_phi(P_theta(x'))``, ``(B,)``, with gradients to the purifier.
        gan: one of :data:`GAN_KINDS`.
        batch_mean: how the relativistic loss takes its means (see :func:`purifier_gan_loss`).

    Returns:
        ``{"total": alpha * adversarial + gamma * pixel + lambda * feature, "adversarial": L_adv,
        "pixel": L_img, "feature": L_feat}``; float32 scalars, the three terms unweighted.
    """
    _check_kind(gan)
    adversarial, pixel, feature = (purified.new_zeros((), dtype=torch.promote_types(purified.dtype, torch.float32)) for _ in range(3))
    if weights.adversarial > 0:
        if real_logits is None or fake_logits is None:
            raise InputError("real_logits and fake_logits are required when the adversarial weight is > 0")
        adversarial = purifier_gan_loss(real_logits, fake_logits, kind=gan, batch_mean=batch_mean)
    if weights.pixel > 0:
        pixel = pixel_loss(purified, clean)
    if weights.feature > 0:
        if clean_features is None or purified_features is None:
            raise InputError("clean_features and purified_features are required when the feature weight is > 0")
        feature = feature_loss(clean_features, purified_features)
    total = weights.adversarial * adversarial + weights.pixel * pixel + weights.feature * feature
    return {"total": total, "adversarial": adversarial, "pixel": pixel, "feature": feature}
