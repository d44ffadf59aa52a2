"""Single-step attacks: FGSM (Goodfellow et al., ICLR 2015) and R-FGSM (Tramer et al., ICLR 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nrp.attacks import defaults
from nrp.attacks.checks import check_eps
from nrp.attacks.ensemble import Model
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.registry import register
from nrp.errors import InputError


@register("fgsm")
def fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    target: torch.Tensor | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One signed-gradient step of size ``eps``: ``x' = clip(x + eps * sign(grad_x J(x, y)))``.

    Args:
        model: maps [0, 1] images to logits ``(B, K)`` (normalisation inside), or a list of models
            (mean logits).
        x: clean images ``(B, 3, H, W)`` in [0, 1].
        y: ``(B,)`` class indices; ``None`` uses the model's own predictions on ``x``, so the attack needs
            no labels (the FGSP ablation of the paper's Figure 5). It costs no extra forward pass.
        eps: step and L-inf budget, [0, 1] units (16/255 in the paper's Appendix F).
        target: targeted FGSM (a step down the target's cross-entropy): ``(B,)`` labels or ``"random"``.
        generator: for random targets.

    Returns:
        ``(B, 3, H, W)`` in [0, 1], ``|x_adv - x| <= eps``, detached.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        >>> x = torch.rand(2, 3, 8, 8)
        >>> bool((fgsm(model, x, eps=4 / 255) - x).abs().max() <= 4 / 255 + 1e-6)
        True
    """
    return iterative_attack(model, x, y, eps=eps, step_size=eps, steps=1, target=target, generator=generator)


@register("r_fgsm")
def r_fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    alpha: float | None = None,
    target: torch.Tensor | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """R-FGSM (Tramer et al., ICLR 2018, Eq. 7): a random signed step of ``alpha``, then a gradient step of ``eps - alpha``.

    ``x_r = x + alpha * sign(N(0, I))``, ``x' = clip(x_r + (eps - alpha) * sign(grad J(x_r, y)))``; the paper's
    Appendix F uses ``alpha = 16/3`` and ``eps = 16`` (0-255 units).

    Args:
        model: classifier (or list of classifiers) on [0, 1] images.
        x: clean images ``(B, 3, H, W)`` in [0, 1].
        y: ``(B,)`` labels; ``None``: the model's predictions on the clean ``x``.
        eps: L-inf budget, [0, 1] units.
        alpha: the random step, [0, eps] in [0, 1] units; default ``eps / 3`` (the paper's 16/3 at eps 16).
        target: ``(B,)`` target labels or ``"random"`` for a targeted attack.
        generator: for the random step (and random targets).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], ``|x_adv - x| <= eps``, detached.
    """
    check_eps(eps)
    alpha = eps * defaults.R_FGSM_ALPHA_FRACTION if alpha is None else alpha
    if not 0.0 <= alpha <= eps:
        raise InputError(f"alpha must be in [0, eps] = [0, {eps}], got {alpha}")
    return iterative_attack(
        model, x, y, eps=eps, step_size=eps - alpha, steps=1, random_start="sign", start_size=alpha,
        target=target, generator=generator,
    )
