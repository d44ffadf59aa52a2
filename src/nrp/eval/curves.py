"""The analysis curves: Figure 3 (fooling rate and feature distortion vs iterations) and Figure 6 (accuracy vs iterations).

Each attack runs with 1, 2, ... iterations on a few clean images, each point spending the whole budget: the step
size is ``eps / steps`` at every point (``step_size: eps/steps``, the default, for I-FGSM, MI-FGSM and SSP alike),
so a point at 1 iteration is a full-budget single step, not a fraction of the budget; a fixed ``step_size``
(0-255 units) reproduces a fixed-step sweep instead. For each count the curve records:

* ``fooling_rate``: share of images whose undefended target prediction differs from its clean one (Figure 3);
* ``feature_distortion``: ``mean |F(x') - F(x)|`` in the feature extractor SSP attacks (the quantity SSP
  maximises, so the attacks are compared on SSP's own terms; Figure 3);
* ``top1``: top-1 accuracy against the labels of the target behind the chosen defense (Figure 6), ``None``
  without labels;
* ``agreement``: share of images the defended target predicts as on the defended clean image (needs no labels).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nrp.attacks import ssp
from nrp.attacks.registry import get_attack
from nrp.errors import InputError
from nrp.eval.components import SSP_DEFAULTS
from nrp.eval.models import ModelBank
from nrp.eval.sets import batch_generator
from nrp.units import PIXEL_SCALE

BUDGET_RULE = "eps/steps"  # each point spends the whole budget


@dataclass
class CurveConfig:
    """The ``curves`` section of an experiment file."""

    source: str
    target: str
    attacks: list[str] = field(default_factory=lambda: ["i_fgsm", "mi_fgsm", "ssp"])
    iterations: list[int] = field(default_factory=lambda: [1, 2, 5, 10])
    images: int = 8
    eps: float = 16.0
    backbone: str = SSP_DEFAULTS["backbone"]
    layer: str = SSP_DEFAULTS["layer"]
    step_size: float | str = BUDGET_RULE

    @classmethod
    def parse(cls, values: dict[str, Any]) -> CurveConfig:
        """Build from the experiment file's mapping, refusing unknown keys and bad counts."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"curves: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        config = cls(**values)
        if not config.iterations or min(config.iterations) < 1:
            raise InputError(f"curves: iterations must be counts >= 1, got {config.iterations}")
        for attack in config.attacks:
            if attack != "ssp" and not {"steps", "step_size"} <= set(inspect.signature(get_attack(attack)).parameters):
                raise InputError(f"curves: attack {attack!r} takes no steps and step_size; use an iterative attack "
                                 f"(i_fgsm, mi_fgsm, ...) or ssp")
        fixed = isinstance(config.step_size, (int, float)) and not isinstance(config.step_size, bool)
        if config.step_size != BUDGET_RULE and not (fixed and 0 < config.step_size <= PIXEL_SCALE):
            raise InputError(f"curves: step_size must be '{BUDGET_RULE}' or a number in (0, 255], got {config.step_size!r}")
        return config

    def step(self, steps: int) -> float:
        """The step size of the point at ``steps`` iterations, [0, 1] units."""
        size = self.eps / steps if self.step_size == BUDGET_RULE else float(self.step_size)
        return size / PIXEL_SCALE


def iteration_curves(config: CurveConfig, clean: torch.Tensor, models: ModelBank, defense: nn.Module, seed: int,
                     labels: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Points ``{attack, iterations, step_size, fooling_rate, feature_distortion, top1, agreement}`` for Figures 3 and 6.

    Args:
        config: what to run.
        clean: ``(N, 3, H, W)`` clean images in [0, 1].
        models: the shared model bank (source, target and feature extractor come from it).
        defense: the defense in front of the target for ``top1`` and ``agreement``.
        seed: the run seed (random starts and SSP's initial noise).
        labels: the images' ``N`` true classes, or ``None`` (then ``top1`` is ``None``).

    Returns:
        One point per (attack, iterations); ``step_size`` in 0-255 units; see the module docstring for the rest.
    """
    extractor = models.feature_extractor(config.backbone, config.layer)
    target = models.classifier(config.target)
    eps = config.eps / 255
    points = []
    truth = None if labels is None else torch.as_tensor(list(labels), device=clean.device)
    with torch.no_grad():
        clean_features = extractor(clean)
        clean_prediction = target(clean).argmax(1)
        defended_prediction = target(defense(clean).clamp(0, 1)).argmax(1)
    for attack in config.attacks:
        for steps in config.iterations:
            generator = batch_generator(seed, f"curves/{attack}", steps)
            step_size = config.step(steps)
            if attack == "ssp":
                adversarial = ssp(clean, extractor, eps=eps, step_size=step_size, steps=steps, generator=generator)
            else:
                function = get_attack(attack)
                adversarial = function(models.classifier(config.source), clean, None, eps=eps, step_size=step_size,
                                       steps=steps, generator=generator)
            with torch.no_grad():
                distortion = (extractor(adversarial) - clean_features).abs().mean().item()
                fooled = _share(target(adversarial).argmax(1) != clean_prediction)
                defended = target(defense(adversarial).clamp(0, 1)).argmax(1)
            points.append({"attack": attack, "iterations": steps, "step_size": step_size * PIXEL_SCALE,
                           "fooling_rate": fooled, "feature_distortion": distortion,
                           "top1": None if truth is None else _share(defended == truth),
                           "agreement": _share(defended == defended_prediction)})
    return points


def _share(hits: torch.Tensor) -> float:
    return hits.double().mean().item()


def eps_curve(rows: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Points ``{attack, eps, top1}`` (attack labelled ``attack / defense``) for the accuracy-vs-eps plot."""
    return [{"attack": f"{row['attack']} / {row['defense']}", "eps": row["eps"], "top1": row["top1"]}
            for row in rows if row["target"] == target and row["attack"] != "clean" and row["top1"] is not None]
