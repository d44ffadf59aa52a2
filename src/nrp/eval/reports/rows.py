"""The records the report writers consume: one classification result, one cross-task result.

The protocol runner produces them as :class:`Row` / :class:`CrossTaskRow` or as plain dictionaries with the
same keys; :func:`as_rows` and :func:`as_cross_task_rows` accept either and validate once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from nrp.errors import InputError

CLEAN = "clean"
"""The ``attack`` name of the no-attack row."""

METRICS: dict[str, str] = {
    "top1": "top-1 accuracy",
    "top5": "top-5 accuracy",
    "success_rate": "attack success rate",
    "fooling_rate": "fooling rate",
}
"""Classification metrics (fractions in [0, 1]) and their human names."""

TASKS: tuple[str, ...] = ("classification", "detection", "instance_segmentation", "semantic_segmentation")
"""Tasks a :class:`CrossTaskRow` may report."""


def _check_fraction(name: str, value: float | None, *, optional: bool) -> None:
    if value is None:
        if not optional:
            raise InputError(f"{name} is required, got None")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(f"{name} must be a fraction in [0, 1], got {value!r}")


def _check_name(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be a non-empty string, got {value!r}")


def _check_eps(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"eps must be a finite number >= 0 (0-255 units), got {value!r}")


@dataclass(frozen=True)
class Row:
    """One classification result: an attack from ``source`` against the defended ``target``.

    Args:
        source: model (or ensemble, ``"a+b"``) the adversaries were made on; any name for the clean row.
        attack: attack name, or ``"clean"`` for the no-attack row.
        eps: L-inf budget in 0-255 units (0 for the clean row).
        defense: defense name (``"none"`` for the undefended target).
        target: model that classifies the (defended) images.
        images: number of images evaluated.
        top1: top-1 accuracy of the defended target, fraction in [0, 1], or None (no labels); the key is required.
        top5: top-5 accuracy, fraction, or None.
        success_rate: share of images the defended target gets wrong, or None.
        fooling_rate: share whose defended prediction differs from the defended clean prediction, or None.
        clean_top1: top-1 accuracy of the defended target on the clean images, or None.
        fingerprint: of everything the row was computed from (sets, defense, models, labels, versions;
            :mod:`nrp.eval.records`); empty when unknown.
    """

    source: str
    attack: str
    eps: float
    defense: str
    target: str
    images: int
    top1: float | None
    top5: float | None = None
    success_rate: float | None = None
    fooling_rate: float | None = None
    clean_top1: float | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for name in ("source", "attack", "defense", "target"):
            _check_name(name, getattr(self, name))
        _check_eps(self.eps)
        if isinstance(self.images, bool) or not isinstance(self.images, int) or self.images < 0:
            raise InputError(f"images must be an integer >= 0, got {self.images!r}")
        for name in ("top1", "top5", "success_rate", "fooling_rate", "clean_top1"):
            _check_fraction(name, getattr(self, name), optional=True)

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dictionary, keys in field order."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CrossTaskRow:
    """One cross-task result (the paper's Table 2): a task metric of ``model`` under an attack and defense.

    Args:
        task: one of :data:`TASKS`.
        attack: attack name, or ``"clean"``.
        eps: L-inf budget in 0-255 units.
        defense: defense name.
        model: the task model (e.g. ``"maskrcnn"``).
        metric: metric name (e.g. ``"bbox_map50"``, ``"segm_map50"``, ``"pixel_accuracy"``, ``"mean_iou"``).
        value: the metric, fraction in [0, 1].
        fingerprint: of everything the score was computed from; empty when unknown.
    """

    task: str
    attack: str
    eps: float
    defense: str
    model: str
    metric: str
    value: float
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; known: {', '.join(TASKS)}")
        for name in ("attack", "defense", "model", "metric"):
            _check_name(name, getattr(self, name))
        _check_eps(self.eps)
        _check_fraction("value", self.value, optional=False)

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dictionary, keys in field order."""
        return dataclasses.asdict(self)


RowType = TypeVar("RowType", Row, CrossTaskRow)


def _coerce(kind: type[RowType], records: Iterable[RowType | Mapping[str, Any]]) -> list[RowType]:
    fields = [f.name for f in dataclasses.fields(kind)]
    required = [f.name for f in dataclasses.fields(kind) if f.default is dataclasses.MISSING]
    out: list[RowType] = []
    for index, record in enumerate(records):
        if isinstance(record, kind):
            out.append(record)
            continue
        if not isinstance(record, Mapping):
            raise InputError(f"record {index} must be a {kind.__name__} or a dict, got {type(record).__name__}")
        unknown = sorted(set(record) - set(fields))
        missing = [name for name in required if name not in record]
        if unknown or missing:
            raise InputError(
                f"record {index}: unknown keys {unknown}, missing keys {missing}; accepted keys: {', '.join(fields)}"
            )
        out.append(kind(**record))
    return out


def as_rows(records: Iterable[Row | Mapping[str, Any]]) -> list[Row]:
    """Validate classification records (``Row`` or dicts with its field names) into a list of :class:`Row`.

    Example:
        >>> as_rows([{"source": "lite0", "attack": "fgsm", "eps": 16, "defense": "none", "target": "lite2",
        ...           "images": 20, "top1": 0.85}])[0].success_rate is None
        True
    """
    return _coerce(Row, records)


def as_cross_task_rows(records: Iterable[CrossTaskRow | Mapping[str, Any]]) -> list[CrossTaskRow]:
    """Validate cross-task records (``CrossTaskRow`` or dicts with its field names) into :class:`CrossTaskRow`."""
    return _coerce(CrossTaskRow, records)


def attack_label(attack: str) -> str:
    """Display name of an attack: ``"mi_fgsm"`` -> ``"MI-FGSM"``; a ``" / defense"`` suffix is kept as is.

    Example:
        >>> attack_label("i_fgsm"), attack_label("ssp / jpeg")
        ('I-FGSM', 'SSP / jpeg')
    """
    name, separator, rest = attack.partition(" / ")
    return name.upper().replace("_", "-") + separator + rest
