"""Where each mini-batch's perturbed images x' come from (Algorithm 2, step 3, and the Figure 5 ablations)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nrp.attacks import fgsm, ssp
from nrp.errors import InputError

PERTURBATIONS = ("ssp", "gaussian", "fgsm")
Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PerturbationSettings:
    """The knobs of every source, in [0, 1] units."""

    eps: float = 16 / 255
    ssp_steps: int = 10
    ssp_step_size: float = 0.01
    ssp_distance: str = "mse"
    noise_std: float = 16 / 255


def make_perturbation(
    kind: str,
    settings: PerturbationSettings,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Perturbation:
    """Return ``perturb(x, noise) -> x'``; ``noise`` is a standard-normal tensor shaped like ``x``.

    The caller draws ``noise`` (for the whole global batch, then its own slice), which makes the result
    independent of how the batch is split across processes and lets a resumed run redraw it exactly.

    Kinds:
        ``ssp``: Algorithm 1 on ``feature_extractor``, starting from ``noise`` as the authors' code does.
        ``gaussian``: the paper's GNP ablation, ``x + noise_std * noise`` clipped to the eps ball and [0, 1].
        ``fgsm``: the FGSP ablation, one FGSM step of size eps against ``classifier``'s own predictions.
    """
    eps = settings.eps
    if kind == "ssp":
        if feature_extractor is None:
            raise InputError("the ssp perturbation needs a feature extractor")
        return lambda x, noise: ssp(
            x, feature_extractor, eps=eps, step_size=settings.ssp_step_size, steps=settings.ssp_steps,
            distance=settings.ssp_distance, init=noise,
        )
    if kind == "gaussian":
        return lambda x, noise: torch.minimum(torch.maximum(x + settings.noise_std * noise, x - eps), x + eps).clamp(0, 1)
    if kind == "fgsm":
        if classifier is None:
            raise InputError("the fgsm perturbation needs a classifier (--fgsm-model)")
        return lambda x, noise: fgsm(classifier, x, eps=eps)
    raise InputError(f"unknown perturbation '{kind}'; known: {', '.join(PERTURBATIONS)}")
