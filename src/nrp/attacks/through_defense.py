"""Attacking through a defense (Section 4.2(d), Table 3, Appendix B): BPDA and expectation over transformation.

``DefendedModel(defense, classifier, gradient=...)`` is an ``nn.Module`` from [0, 1] images to logits whose
forward pass is always the real ``classifier(defense(x))``, while the backward pass is chosen:

* ``"full"``: backpropagate through the defense (it must be differentiable, e.g. an NRP purifier);
* ``"identity"``: BPDA with the identity (Athalye et al., 2018): the defense's Jacobian is taken to be I;
* ``"substitute"``: BPDA with a differentiable stand-in (e.g. a locally trained NRP_resG or U-Net) whose
  Jacobian replaces the defense's.

With ``eot_samples > 1`` the logits are averaged over that many calls of a randomised defense (dynamic NRP,
R&P), so their gradient is the expectation over the defense's randomness (EOT). Any attack of
:mod:`nrp.attacks` then runs unchanged against the defended model.
"""

from __future__ import annotations

import torch
from torch import nn

from nrp.errors import InputError

GRADIENT_MODES = ("full", "identity", "substitute")


class DefendedModel(nn.Module):
    """``classifier(defense(x))`` with a chosen gradient through the defense.

    Args:
        defense: an ``nn.Module`` from [0, 1] images to [0, 1] images.
        classifier: maps [0, 1] images to logits (normalisation inside).
        gradient: ``"full"``, ``"identity"`` or ``"substitute"`` (see the module docstring).
        substitute: the differentiable stand-in for ``gradient="substitute"``.
        eot_samples: defense draws averaged per forward pass (>= 1).

    Shapes:
        ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, K)``.
    """

    def __init__(
        self,
        defense: nn.Module,
        classifier: nn.Module,
        gradient: str = "full",
        substitute: nn.Module | None = None,
        eot_samples: int = 1,
    ) -> None:
        super().__init__()
        if gradient not in GRADIENT_MODES:
            raise InputError(f"unknown gradient mode '{gradient}'; known: {', '.join(GRADIENT_MODES)}")
        if gradient == "substitute" and substitute is None:
            raise InputError("gradient='substitute' needs a substitute network")
        if eot_samples < 1:
            raise InputError(f"eot_samples must be >= 1, got {eot_samples}")
        self.defense, self.classifier, self.substitute = defense, classifier, substitute
        self.gradient, self.eot_samples = gradient, eot_samples

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [self.classifier(self.defended(x)) for _ in range(self.eot_samples)]
        return torch.stack(logits).mean(0)

    def defended(self, x: torch.Tensor) -> torch.Tensor:
        """The defense's real output, carrying the gradient of the chosen mode."""
        if self.gradient == "full":
            return self.defense(x)
        with torch.no_grad():
            output = self.defense(x)
        stand_in = x if self.gradient == "identity" else self.substitute(x)
        # Forward value: the defense's output; backward: the stand-in's Jacobian.
        return stand_in + (output - stand_in).detach()
