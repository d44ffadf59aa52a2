"""Adaptive evaluation: attack entries of ``nrp eval`` crafted through the defense they are scored against (issue 15).

The transfer protocol (:mod:`nrp.eval.protocol`) crafts each set once per source, blind to the defense. An
attack entry with an ``adaptive`` mapping is instead crafted white box on every (defense, target) pair of the
experiment: the registered attack runs on :class:`~nrp.attacks.DefendedModel` (the defense in front of the
target), so each (attack, eps, defense, target) is crafted on its own. Any classifier attack of the registry
can be adaptive:

* ``{name: pgd, adaptive: {eot: 8}}``: PGD through the dynamic defense with EOT over 8 draws per step, the full
  gradient; ``adaptive: {gradient: identity}`` is BPDA (Athalye et al. 2018);
* ``{name: autoattack, version: rand}``: AutoAttack from torchattacks (:func:`~nrp.attacks.autoattack`), its
  own EOT draws (``eot_draws``, 20);
* the paper's Table 3 protocol: ``{name: dim_ti_fgsm, adaptive: {source: MODEL, gradient: substitute,
  substitute: DEFENSE}}``: DIM-TI crafted on a *source* classifier behind the defense with the gradient of a
  locally trained *substitute* purifier (BPDA: the real defense forward), then scored on the defended target.

The mapping's keys are the fields of :class:`Adaptive`. Each row reports the defended accuracy of one
purification of the final adversarial image (single draw) and its worst of ``draws`` purifications (an image
counts as broken if any draw misclassifies it); with ``fixed: true`` the dynamic defense's noise is fixed (the
same draw at every call, attack and evaluation), a deterministic defense reported separately.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.atomic import atomic_path
from nrp.attacks import DefendedModel
from nrp.attacks.registry import get_attack
from nrp.attacks.through_defense import GRADIENT_MODES
from nrp.errors import InputError
from nrp.eval.components import ADAPTIVE, Component
from nrp.eval.datasets import StoredImages

ADAPTIVE_JSON, ADAPTIVE_MD = "adaptive.json", "adaptive.md"


@dataclass(frozen=True)
class Adaptive:
    """How an attack entry is crafted through the defense: the keys of its ``adaptive`` mapping.

    Attributes:
        gradient: the backward pass through the defense (:class:`~nrp.attacks.DefendedModel`): ``full``,
            ``identity`` (BPDA) or ``substitute`` (BPDA with ``substitute``'s Jacobian).
        eot: defense draws whose logits are averaged per forward pass (EOT), >= 1.
        fixed: fix the dynamic defense's randomness (one seeded draw reused at every call).
        draws: N of the worst-of-N figure, >= 1.
        source: the classifier the attack is crafted on (Table 3: the attacker's own model); ``None``: each
            target itself (white box).
        substitute: the defense whose gradient stands in for the defense's (``gradient: substitute``).
        max_images: attack only the first this many images (``None``: all).
    """

    gradient: str = "full"
    eot: int = 1
    fixed: bool = False
    draws: int = 10
    source: str | None = None
    substitute: Any = None
    max_images: int | None = None

    @classmethod
    def parse(cls, value: Any) -> Adaptive:
        """From an entry's ``adaptive`` mapping (``{}`` for every default); bad keys and values raise."""
        if not isinstance(value, dict):
            raise InputError(f"adaptive must be a mapping of {', '.join(cls.__dataclass_fields__)}, got {value!r}")
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"adaptive: unknown keys {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        settings = cls(**value)
        if settings.gradient not in GRADIENT_MODES:
            raise InputError(f"adaptive gradient must be one of {', '.join(GRADIENT_MODES)}, got '{settings.gradient}'")
        if (settings.gradient == "substitute") != (settings.substitute is not None):
            raise InputError("adaptive: 'gradient: substitute' and a 'substitute' defense go together")
        for name in ("eot", "draws"):
            if getattr(settings, name) < 1:
                raise InputError(f"adaptive {name} must be >= 1, got {getattr(settings, name)}")
        return settings


@dataclass(frozen=True)
class AdaptiveAttack:
    """One adaptive attack: a registered classifier attack, its parameters, and how it goes through the defense.

    Attributes:
        name: the registered attack (``pgd``, ``autoattack``, ``dim_ti_fgsm``, ...).
        params: its keyword parameters, [0, 1] units (as in an experiment file's entry), without ``eps``.
        settings: :class:`Adaptive`.
        label: the row's name.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    settings: Adaptive = Adaptive()
    label: str = ""

    @classmethod
    def of(cls, component: Component) -> AdaptiveAttack:
        """The adaptive attack of an ``nrp eval`` attack entry that has an ``adaptive`` mapping."""
        params = {key: value for key, value in component.params.items() if key != ADAPTIVE}
        return cls(component.name, params, Adaptive.parse(component.params[ADAPTIVE]), component.label)


def is_adaptive(component: Component) -> bool:
    """Whether an attack entry is crafted through the defense (it has an ``adaptive`` mapping)."""
    return ADAPTIVE in component.params


class FixedRandomness(nn.Module):
    """``defense`` with its random draw fixed: its ``generator`` is reseeded with ``seed`` before every call.

    For a dynamic :class:`~nrp.purifiers.Purifier` this is one noise draw reused everywhere, a deterministic
    defense; a defense without a ``generator`` attribute is returned unchanged in behaviour.
    """

    def __init__(self, defense: nn.Module, seed: int) -> None:
        super().__init__()
        self.defense, self.seed = defense, seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.defense, "generator"):
            self.defense.generator = torch.Generator(x.device).manual_seed(self.seed)
        return self.defense(x)


def craft(
    attack: AdaptiveAttack, defense: nn.Module, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
    generator: torch.Generator, substitute: nn.Module | None = None,
) -> torch.Tensor:
    """``attack``'s adversarial images against ``model(defense(.))``, with its gradient mode and EOT draws.

    Args:
        model: the classifier the attack differentiates (the target, or Table 3's source), [0, 1] -> logits.
        x: ``(B, 3, H, W)`` in [0, 1]; y: ``(B,)`` labels. eps: L-inf budget, [0, 1] units.
        substitute: the stand-in of ``gradient: substitute``.
    """
    settings = attack.settings
    through = DefendedModel(defense, model, gradient=settings.gradient, substitute=substitute,
                            eot_samples=settings.eot)
    return get_attack(attack.name)(through, x, y, eps=eps, generator=generator, **attack.params)


def defended_accuracy(
    defense: nn.Module, classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int
) -> tuple[float, float]:
    """``(single-draw accuracy, worst-of-draws accuracy)`` of ``classifier(defense(x))`` against ``y``.

    The first draw is the single-draw figure; an image counts as correct in the worst-of figure only if every
    one of the ``draws`` purifications is classified correctly.
    """
    with torch.no_grad():
        correct = torch.stack([classifier(defense(x)).argmax(1) == y for _ in range(draws)])
    return correct[0].float().mean().item(), correct.all(0).float().mean().item()


def evaluate_adaptive(
    attack: AdaptiveAttack, defense: nn.Module, classifier: nn.Module, x: torch.Tensor | StoredImages,
    y: torch.Tensor, eps: float, *, seed: int = 0, source: nn.Module | None = None, substitute: nn.Module | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Craft ``attack`` through ``defense`` and score it on ``classifier(defense(.))``: one row.

    Args:
        attack: what to run (:class:`AdaptiveAttack`).
        defense: [0, 1] -> [0, 1] module, possibly randomised (a dynamic purifier).
        classifier: the defended target, [0, 1] images -> logits.
        x: clean images ``(B, 3, H, W)`` in [0, 1], a tensor or anything sliced like one into batches (a
            :class:`~nrp.eval.datasets.StoredImages`, which reads each batch from disk); its first
            ``max_images`` are attacked. y: labels ``(B,)``.
        eps: L-inf budget, [0, 1] units.
        seed: seeds the attack's generator and the fixed-randomness draw.
        source: the classifier crafted on (``settings.source``); ``None``: ``classifier`` (white box).
        substitute: the stand-in of ``gradient: substitute``.
        batch_size: images attacked at once (memory grows with it, and with ``eot``); ``None``: all. The
            batches draw in turn from one generator.

    Returns:
        ``{clean, single_draw, worst_of_n}`` accuracies in [0, 1] (``clean``: the defended clean images, one
        draw), ``draws`` and ``images``.
    """
    settings = attack.settings
    count = len(x) if settings.max_images is None else min(len(x), settings.max_images)
    attacked = FixedRandomness(defense, seed) if settings.fixed else defense
    generator = torch.Generator().manual_seed(seed)
    totals = torch.zeros(3)  # correct images: clean, single draw, worst of N
    step = batch_size or max(count, 1)
    for start in range(0, count, step):
        stop = min(start + step, count)
        x_batch, y_batch = x[start:stop], y[start:stop]
        clean, _ = defended_accuracy(attacked, classifier, x_batch, y_batch, 1)
        x_adv = craft(attack, attacked, classifier if source is None else source, x_batch, y_batch, eps, generator,
                      substitute)
        single, worst = defended_accuracy(attacked, classifier, x_adv, y_batch, settings.draws)
        totals += torch.tensor([clean, single, worst]) * x_batch.shape[0]
    clean, single, worst = (totals / max(count, 1)).tolist()
    return {"clean": clean, "single_draw": single, "worst_of_n": worst, "draws": settings.draws, "images": count}


def adaptive_rows(
    attacks: list[Component], eps_values: list[float], defenses: dict[str, nn.Module], targets: list[str],
    classifier: Callable[[str], nn.Module], build_defense: Callable[[Any], nn.Module], x: torch.Tensor | StoredImages,
    y: torch.Tensor, seed: int, batch_size: int | None = None, on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The adaptive entries of an experiment on its clean images: a row per (attack, eps, defense, target).

    Args:
        attacks: the entries with an ``adaptive`` mapping (:func:`is_adaptive`), in the file's order.
        eps_values: the budgets, 0-255 units. defenses: the run's defenses by label. targets: model names.
        classifier: a model name -> the classifier (the run's model bank).
        build_defense: a defense entry -> module (the substitutes).
        x: ``(N, 3, H, W)`` the stored clean images in [0, 1] (a tensor, or sliced into batches like one, see
            :func:`evaluate_adaptive`); y: ``(N,)`` their labels.
        seed: the run seed; entry ``k`` (of the adaptive ones) is seeded with ``seed + k``, and a randomised
            defense draws from the global RNG seeded from it, inside ``torch.random.fork_rng``.
        batch_size: images attacked at once (the run's ``batch_size``).
        on_row: called with each row as it is done (progress).
    """
    rows = []
    for index, component in enumerate(attacks):
        attack = AdaptiveAttack.of(component)
        settings = attack.settings
        source = None if settings.source is None else classifier(settings.source)
        substitute = None if settings.substitute is None else build_defense(settings.substitute)
        for eps in eps_values:
            for defense, module in defenses.items():
                for target in targets:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed + index)
                        scores = evaluate_adaptive(attack, module, classifier(target), x, y, eps / 255,
                                                   seed=seed + index, source=source, substitute=substitute,
                                                   batch_size=batch_size)
                    row = {"attack": component.label, "eps": eps, "defense": defense, "target": target,
                           "crafted_on": settings.source or target, **scores,
                           "name": attack.name, "params": attack.params, "adaptive": asdict(settings)}
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
    return rows


def write_adaptive(rows: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """``adaptive.json`` (every field) and ``adaptive.md`` (a table), each written atomically."""
    lines = ["| attack | eps | defense | target | crafted on | gradient | EOT | clean (defended) | single draw | "
             "worst of N | N |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['attack']} | {r['eps']:g} | {r['defense']} | {r['target']} | {r['crafted_on']} | "
              f"{r['adaptive']['gradient']}{' (fixed noise)' if r['adaptive']['fixed'] else ''} | "
              f"{r['adaptive']['eot']} | {r['clean']:.1%} | {r['single_draw']:.1%} | {r['worst_of_n']:.1%} | "
              f"{r['draws']} |" for r in rows]
    paths = {"adaptive_json": folder / ADAPTIVE_JSON, "adaptive_md": folder / ADAPTIVE_MD}
    for key, text in (("adaptive_json", json.dumps(rows, indent=1, default=str)), ("adaptive_md", "\n".join(lines) + "\n")):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text)
    return paths
