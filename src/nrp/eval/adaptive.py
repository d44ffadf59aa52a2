"""Adaptive evaluation: attacks that know the defense, crafted through it (issue 15).

The transfer protocol (:mod:`nrp.eval.protocol`) crafts each set once per source, blind to the defense. An
adaptive attacker instead differentiates through ``defense`` and ``classifier`` together
(:class:`~nrp.attacks.DefendedModel`), so every (attack, defense, target) is crafted on its own:

* ``pgd``: PGD with ``eot`` draws of a randomised defense per step, through the full gradient or BPDA
  (``gradient: identity``, Athalye et al. 2018);
* ``autoattack``: AutoAttack, ``version: standard`` or ``rand`` (APGD-CE/DLR with 20 EOT draws), from
  torchattacks through :func:`~nrp.attacks.autoattack`;
* ``table3``: the paper's Table 3 protocol: DIM-TI crafted on a *source* classifier behind a locally trained
  *substitute* purifier (BPDA: the real defense forward, the substitute's gradient; identity if none), then
  transferred to the defended target.

Each row reports the defended accuracy of one purification of the final adversarial image (single draw) and
its worst of ``draws`` purifications (an image counts as broken if any draw misclassifies it); with
``fixed: true`` the dynamic defense's noise is fixed (the same draw at every call, attack and evaluation), a
deterministic defense reported separately.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.atomic import atomic_path
from nrp.attacks import DefendedModel, autoattack, dim_ti_fgsm, pgd
from nrp.attacks.autoattack import RAND_EOT_DRAWS, SQUARE_QUERIES
from nrp.errors import InputError

KINDS = ("pgd", "autoattack", "table3")
GRADIENTS = ("full", "identity")


@dataclass(frozen=True)
class AdaptiveAttack:
    """One adaptive attack; the keys of an ``adaptive.attacks`` entry map one-to-one onto these fields.

    Attributes:
        kind: ``pgd``, ``autoattack`` or ``table3``.
        gradient: ``full`` (through the defense) or ``identity`` (BPDA); ``table3`` uses its substitute.
        eot: defense draws averaged per forward pass (EOT), >= 1; for AutoAttack's ``rand`` version, its EOT
            draws per step (1 means its default 20).
        steps: iterations (PGD, AutoAttack's APGD/FAB, DIM-TI).
        step_size: PGD's step, [0, 1] units.
        version: AutoAttack's ``standard`` or ``rand``.
        queries: Square's query budget in AutoAttack's ``standard`` version (5000).
        fixed: fix the dynamic defense's randomness (one draw, reused at every call).
        label: the row's name (default: made from the fields).
    """

    kind: str
    gradient: str = "full"
    eot: int = 1
    steps: int = 10
    step_size: float = 2 / 255
    version: str = "standard"
    queries: int = SQUARE_QUERIES
    fixed: bool = False
    label: str = ""

    @classmethod
    def parse(cls, value: dict[str, Any]) -> AdaptiveAttack:
        """From a mapping such as ``{"kind": "pgd", "eot": 8, "gradient": "identity"}``; bad keys raise."""
        if not isinstance(value, dict) or "kind" not in value:
            raise InputError(f"each adaptive attack must be a mapping with a 'kind' ({', '.join(KINDS)}), got {value!r}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(f"adaptive attack: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        attack = cls(**value)
        attack.check()
        return attack

    def check(self) -> None:
        """Refuse values that cannot work."""
        if self.kind not in KINDS:
            raise InputError(f"unknown adaptive attack kind '{self.kind}'; known: {', '.join(KINDS)}")
        if self.gradient not in GRADIENTS:
            raise InputError(f"adaptive attack gradient must be one of {', '.join(GRADIENTS)}, got '{self.gradient}'")
        for name in ("eot", "steps", "queries"):
            if getattr(self, name) < 1:
                raise InputError(f"adaptive attack {name} must be >= 1, got {getattr(self, name)}")

    @property
    def name(self) -> str:
        """The label, or one made from the fields (``pgd full eot8``)."""
        if self.label:
            return self.label
        mode = {"autoattack": self.version, "table3": "(DIM-TI, BPDA)"}.get(self.kind, self.gradient)
        parts = [self.kind, mode]
        parts += [f"eot{self.eot}"] if self.eot > 1 else []
        parts += ["fixed noise"] if self.fixed else []
        return " ".join(parts)


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


@dataclass
class AdaptiveResult:
    """One row: accuracies in [0, 1] over the images."""

    attack: str
    single_draw: float
    worst_of_n: float
    draws: int
    clean: float
    details: dict[str, Any] = field(default_factory=dict)


def craft(
    attack: AdaptiveAttack, defense: nn.Module, classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
    generator: torch.Generator, source: nn.Module | None = None, substitute: nn.Module | None = None,
) -> torch.Tensor:
    """The adversarial images of ``attack`` against ``classifier(defense(.))`` (``table3``: crafted on ``source``)."""
    if attack.kind == "table3":
        if source is None:
            raise InputError("the table3 protocol needs a source classifier to craft on")
        mode = "substitute" if substitute is not None else "identity"
        through = DefendedModel(defense, source, gradient=mode, substitute=substitute, eot_samples=attack.eot)
        return dim_ti_fgsm(through, x, y, eps=eps, steps=attack.steps, step_size=eps / attack.steps, generator=generator)
    if attack.kind == "pgd":
        through = DefendedModel(defense, classifier, gradient=attack.gradient, eot_samples=attack.eot)
        return pgd(through, x, y, eps=eps, step_size=attack.step_size, steps=attack.steps, generator=generator)
    # AutoAttack's rand version draws its own EOT samples (one defense call each): eot > 1 sets their number.
    through = DefendedModel(defense, classifier, gradient=attack.gradient)
    draws = attack.eot if attack.eot > 1 else RAND_EOT_DRAWS
    return autoattack(through, x, y, eps=eps, version=attack.version, steps=attack.steps, eot_draws=draws,
                      queries=attack.queries, generator=generator)


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
    attacks: list[AdaptiveAttack], defense: nn.Module, classifier: nn.Module, x: torch.Tensor, y: torch.Tensor,
    eps: float, *, draws: int = 10, seed: int = 0, source: nn.Module | None = None,
    substitute: nn.Module | None = None, on_row: Callable[[AdaptiveResult], None] | None = None,
) -> list[AdaptiveResult]:
    """Craft every adaptive attack through ``defense`` and report single-draw and worst-of-``draws`` accuracy.

    Args:
        attacks: what to run (:class:`AdaptiveAttack`).
        defense: [0, 1] -> [0, 1] module, possibly randomised (a dynamic purifier).
        classifier: the defended target, [0, 1] images -> logits.
        x: clean images ``(B, 3, H, W)`` in [0, 1]. y: labels ``(B,)``.
        eps: L-inf budget, [0, 1] units.
        draws: N of the worst-of-N figure (>= 1).
        seed: seeds each attack's generator and the fixed-randomness draw.
        source, substitute: the ``table3`` protocol's source classifier and substitute purifier.
        on_row: called with each row as it is done (progress).
    """
    if draws < 1:
        raise InputError(f"draws must be >= 1, got {draws}")
    rows = []
    for index, attack in enumerate(attacks):
        attacked = FixedRandomness(defense, seed) if attack.fixed else defense
        clean, _ = defended_accuracy(attacked, classifier, x, y, 1)
        x_adv = craft(attack, attacked, classifier, x, y, eps, torch.Generator().manual_seed(seed + index), source,
                      substitute)
        single, worst = defended_accuracy(attacked, classifier, x_adv, y, draws)
        row = AdaptiveResult(attack.name, single, worst, draws, clean,
                             {"kind": attack.kind, "gradient": attack.gradient, "eot": attack.eot,
                              "steps": attack.steps, "fixed": attack.fixed, "version": attack.version,
                              "queries": attack.queries, "images": int(x.shape[0]), "eps": eps})
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


ADAPTIVE_KEYS = ("defense", "target", "attacks", "eps", "draws", "max_images", "source", "substitute")


def parse_adaptive(value: dict[str, Any]) -> tuple[dict[str, Any], list[AdaptiveAttack]]:
    """Check the ``adaptive`` key of an experiment file; returns it with defaults filled, and its attacks.

    ``{defense: <defense component>, target: MODEL, attacks: [{kind: pgd, eot: 8}, ...], eps: 16 (0-255),
    draws: 10, max_images: null, source: MODEL (table3), substitute: <defense component> (table3)}``.
    """
    if not isinstance(value, dict):
        raise InputError(f"adaptive must be a mapping of {', '.join(ADAPTIVE_KEYS)}, got {value!r}")
    unknown = sorted(set(value) - set(ADAPTIVE_KEYS))
    if unknown:
        raise InputError(f"adaptive: unknown keys {', '.join(unknown)}; known: {', '.join(ADAPTIVE_KEYS)}")
    for key in ("defense", "target", "attacks"):
        if key not in value:
            raise InputError(f"adaptive needs '{key}'")
    settings = {"eps": 16.0, "draws": 10, "max_images": None, "source": None, "substitute": None, **value}
    attacks = [AdaptiveAttack.parse(entry) for entry in settings["attacks"]]
    if any(a.kind == "table3" for a in attacks) and settings["source"] is None:
        raise InputError("adaptive: a table3 attack needs 'source' (the classifier it is crafted on)")
    return settings, attacks


def run_adaptive(value: dict[str, Any], models: Any, clean: torch.Tensor, labels: torch.Tensor, seed: int,
                 device: torch.device) -> list[AdaptiveResult]:
    """The ``adaptive`` block of an experiment on the run's stored clean images (``nrp eval``'s hook).

    Args:
        value: the ``adaptive`` mapping (see :func:`parse_adaptive`).
        models: the run's :class:`~nrp.eval.models.ModelBank`.
        clean: the clean images ``(B, 3, H, W)`` in [0, 1]; ``labels``: ``(B,)``.
        seed: the run seed. device: where to run.
    """
    from nrp.eval.components import Component
    from nrp.defenses import create_defense

    settings, attacks = parse_adaptive(value)
    count = settings["max_images"] or clean.shape[0]

    def build(component_value: Any) -> nn.Module:
        component = Component.parse(component_value, "defense")
        return create_defense(component.name, **component.params).to(device).eval()

    source = None if settings["source"] is None else models.classifier(settings["source"])
    substitute = None if settings["substitute"] is None else build(settings["substitute"])
    return evaluate_adaptive(attacks, build(settings["defense"]), models.classifier(settings["target"]),
                             clean[:count].to(device), labels[:count].to(device), settings["eps"] / 255,
                             draws=settings["draws"], seed=seed, source=source, substitute=substitute)


def adaptive_report(value: dict[str, Any], run: Any, seed: int, device: torch.device, folder: Path) -> dict[str, Path]:
    """Run the ``adaptive`` block on ``run``'s stored clean images; write ``adaptive.json`` and ``adaptive.md``."""
    from nrp.eval.datasets import read_batch

    if run.images.labels is None:
        raise InputError("the adaptive evaluation needs labelled images (set 'labels')")
    stems = run.images.stems()
    rows = run_adaptive(value, run.models, read_batch(run.clean.paths(stems)), torch.tensor(run.images.labels), seed,
                        device)
    return write_adaptive(rows, folder)


def write_adaptive(rows: list[AdaptiveResult], folder: Path) -> dict[str, Path]:
    """``adaptive.json`` (every field) and ``adaptive.md`` (a table), each written atomically."""
    records = [dataclasses.asdict(row) for row in rows]
    lines = ["| attack | clean (defended) | single draw | worst of N | N |", "|---|---|---|---|---|"]
    lines += [f"| {r.attack} | {r.clean:.1%} | {r.single_draw:.1%} | {r.worst_of_n:.1%} | {r.draws} |" for r in rows]
    paths = {"adaptive_json": folder / "adaptive.json", "adaptive_md": folder / "adaptive.md"}
    for key, text in (("adaptive_json", json.dumps(records, indent=1)), ("adaptive_md", "\n".join(lines) + "\n")):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text)
    return paths
