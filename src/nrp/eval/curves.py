"""The analysis curves: Figure 3 (fooling rate and feature distortion vs iterations) and Figure 6 (accuracy vs iterations).

Each attack runs with 1, 2, ... iterations at its usual step size on a few clean images; for each count the
curve records the target's fooling rate (prediction changed from the clean one), its top-1 accuracy behind
the chosen defense, and the mean feature distortion ``mean |F(x') - F(x)|`` in the feature extractor that SSP
attacks (the quantity SSP maximises, so the three attacks are compared on SSP's own terms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nrp.attacks import ssp
from nrp.attacks.registry import get_attack
from nrp.errors import InputError
from nrp.eval.crafting import SSP_DEFAULTS, batch_generator
from nrp.eval.models import ModelBank


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
        return config


def iteration_curves(config: CurveConfig, clean: torch.Tensor, models: ModelBank, defense: nn.Module, seed: int) -> list[dict[str, Any]]:
    """Points ``{attack, iterations, fooling_rate, feature_distortion, top1?}`` for Figures 3 and 6.

    Args:
        config: what to run.
        clean: ``(N, 3, H, W)`` clean images in [0, 1]; their labels are taken as the target's clean predictions
            for the fooling rate, and ``top1`` is the share still predicted as on the clean image behind ``defense``.
        models: the shared model bank (source, target and feature extractor come from it).
        defense: the defense in front of the target for ``top1``.
        seed: the run seed (random starts and SSP's initial noise).
    """
    extractor = models.feature_extractor(config.backbone, config.layer)
    target = models.classifier(config.target)
    eps = config.eps / 255
    points = []
    with torch.no_grad():
        clean_features = extractor(clean)
        clean_prediction = target(clean).argmax(1)
        defended_prediction = target(defense(clean).clamp(0, 1)).argmax(1)
    for attack in config.attacks:
        for steps in config.iterations:
            generator = batch_generator(seed, f"curves/{attack}", steps)
            if attack == "ssp":
                adversarial = ssp(clean, extractor, eps=eps, steps=steps, generator=generator)
            else:
                function = get_attack(attack)
                adversarial = function(models.classifier(config.source), clean, None, eps=eps, steps=steps, generator=generator)
            with torch.no_grad():
                distortion = (extractor(adversarial) - clean_features).abs().mean().item()
                fooled = (target(adversarial).argmax(1) != clean_prediction).double().mean().item()
                kept = (target(defense(adversarial).clamp(0, 1)).argmax(1) == defended_prediction).double().mean().item()
            points.append({"attack": attack, "iterations": steps, "fooling_rate": fooled,
                           "feature_distortion": distortion, "top1": kept})
    return points


def eps_curve(rows: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Points ``{attack, eps, top1}`` (attack labelled ``attack / defense``) for the accuracy-vs-eps plot."""
    return [{"attack": f"{row['attack']} / {row['defense']}", "eps": row["eps"], "top1": row["top1"]}
            for row in rows if row["target"] == target and row["attack"] != "clean" and row["top1"] is not None]
