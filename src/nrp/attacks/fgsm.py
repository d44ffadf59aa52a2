"""The Fast Gradient Sign Method (Goodfellow et al., 2015), with the model's own predictions as labels."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from nrp.errors import InputError


def fgsm(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = 16 / 255,
) -> torch.Tensor:
    """One signed-gradient step of size ``eps`` that increases the cross-entropy of ``model``.

    Args:
        model: maps [0, 1] images to logits ``(B, K)`` (normalisation inside).
        x: clean images ``(B, 3, H, W)`` in [0, 1].
        y: ``(B,)`` class indices; ``None`` uses the model's own predictions on ``x``, so the attack needs
            no labels (the FGSP ablation of the paper's Figure 5).
        eps: step and L-inf budget, [0, 1] units (16/255 in the paper's Appendix F).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], ``|x_adv - x| <= eps``, detached.
    """
    if not 0.0 <= eps <= 1.0:
        raise InputError(f"eps must be in [0, 1] ([0, 255] on the command line), got {eps}")
    x = x.detach().requires_grad_(True)
    logits = model(x)
    targets = logits.argmax(1).detach() if y is None else y
    (gradient,) = torch.autograd.grad(F.cross_entropy(logits, targets), x)
    return (x + eps * gradient.sign()).clamp(0.0, 1.0).detach()
