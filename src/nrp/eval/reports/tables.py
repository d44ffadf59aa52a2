"""Result tables laid out like the paper's Table 1 (classification) and Table 2 (cross-task), as Markdown.

A :class:`Table` holds already-formatted cells, so the Markdown writer here and the HTML writer
(:mod:`nrp.eval.reports.html`) render exactly the same table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.eval.reports.rows import CLEAN, METRICS, CrossTaskRow, Row, as_cross_task_rows, as_rows

MISSING = "–"
"""Cell text of a result that was not computed."""

DEFAULT_METRICS: tuple[str, ...] = ("success_rate", "fooling_rate", "top1", "top5")
"""Metrics :func:`write_markdown` writes a table for (those with at least one value)."""


@dataclass(frozen=True)
class Table:
    """A formatted table: a title, a header row and body rows of cell strings.

    ``numeric_from`` is the index of the first numeric column (right-aligned when rendered).
    """

    title: str
    header: tuple[str, ...]
    body: tuple[tuple[str, ...], ...]
    numeric_from: int


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal, or :data:`MISSING` for None/NaN.

    Example:
        >>> percent(0.8512), percent(None)
        ('85.1', '–')
    """
    if value is None or math.isnan(value):
        return MISSING
    return f"{100.0 * value:.1f}"


def _first_seen(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _attack_keys(records: Iterable[Row | CrossTaskRow]) -> list[tuple[str, float]]:
    """(attack, eps) of the attacked records: attacks in first-seen order, each attack's budgets likewise."""
    keys = _first_seen((r.attack, float(r.eps)) for r in records if r.attack != CLEAN)
    attacks = _first_seen(attack for attack, _ in keys)
    return [key for attack in attacks for key in keys if key[0] == attack]


def _attack_columns(keys: Sequence[tuple[str, float]]) -> list[str]:
    """Column titles for (attack, eps) keys: the attack name, plus the budget when one attack has several."""
    budgets: dict[str, set[float]] = {}
    for attack, eps in keys:
        budgets.setdefault(attack, set()).add(float(eps))
    return [attack if len(budgets[attack]) == 1 else f"{attack} ε={eps:g}" for attack, eps in keys]


def _clean_accuracy(block: list[Row], source: str, defense: str) -> float | None:
    """The defense's clean top-1: its clean row (same source preferred), else ``clean_top1`` of an attack row."""
    clean = [r for r in block if r.attack == CLEAN and r.defense == defense and r.top1 is not None]
    if clean:
        same_source = [r for r in clean if r.source == source]
        return (same_source or clean)[0].top1
    for row in block:
        if row.source == source and row.defense == defense and row.clean_top1 is not None:
            return row.clean_top1
    return None


def clean_column(metric: str) -> str:
    """Title of the first numeric column: the defense's clean top-1, so named unless the table is of top-1.

    Example:
        >>> clean_column("top1"), clean_column("fooling_rate")
        ('clean', 'clean top-1')
    """
    return CLEAN if metric == "top1" else f"{CLEAN} top-1"


def classification_tables(
    rows: Iterable[Row | Mapping[str, Any]], metric: str = "success_rate", target: str | None = None
) -> list[Table]:
    """One :class:`Table` per target model, laid out like the paper's Table 1.

    Body rows are defenses grouped by source model (the source is written on the first row of its group
    only); columns are the defense's clean top-1 on that target (titled by :func:`clean_column`), then the attacks in the
    order they first appear. An attack evaluated at several budgets gets one column per budget, titled
    ``"fgsm ε=8"``, next to each other. Values are percentages with one decimal; missing cells are :data:`MISSING`.

    Args:
        rows: classification records (:class:`Row` or dicts).
        metric: one of :data:`~nrp.eval.reports.rows.METRICS` for the attack columns.
        target: only this target model; None for every target, in order of first appearance.

    Raises:
        InputError: unknown metric or target, or two records for the same cell.
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    rows = as_rows(rows)
    targets = _first_seen(r.target for r in rows)
    if target is not None:
        if target not in targets:
            raise InputError(f"no results for target {target!r}; targets: {', '.join(targets) or 'none'}")
        targets = [target]
    return [_target_table([r for r in rows if r.target == name], metric, name) for name in targets]


def _target_table(block: list[Row], metric: str, target: str) -> Table:
    attacked = [r for r in block if r.attack != CLEAN]
    cells: dict[tuple[str, str, str, float], Row] = {}
    for row in attacked:
        key = (row.source, row.defense, row.attack, float(row.eps))
        if key in cells:
            raise InputError(f"two results for target {target!r}, source {row.source!r}, defense {row.defense!r}, "
                             f"attack {row.attack!r}, eps {row.eps:g}")
        cells[key] = row
    attack_keys = _attack_keys(attacked)
    grouped = attacked or block  # a clean-only block still lists its defenses
    body: list[tuple[str, ...]] = []
    for source in _first_seen(r.source for r in grouped):
        defenses = _first_seen(r.defense for r in grouped if r.source == source)
        for position, defense in enumerate(defenses):
            values = [percent(_clean_accuracy(block, source, defense))]
            for attack, eps in attack_keys:
                row = cells.get((source, defense, attack, eps))
                values.append(percent(None if row is None else getattr(row, metric)))
            body.append((source if position == 0 else "", defense, *values))
    header = ("Source", "Defense", clean_column(metric), *_attack_columns(attack_keys))
    return Table(f"Target: {target} — {METRICS[metric]} (%)", header, tuple(body), numeric_from=2)


def cross_task_table(cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]]) -> Table:
    """The cross-task results as one :class:`Table`, after the paper's Table 2.

    Body rows are (task, model, metric, defense), each key written only where it changes; columns are
    ``clean`` then the attacks in order of first appearance (one per budget when an attack has several).

    Raises:
        InputError: two records for the same cell.
    """
    cross_rows = as_cross_task_rows(cross_rows)
    cells: dict[tuple[str, str, str, str, str, float], CrossTaskRow] = {}
    for row in cross_rows:
        key = (row.task, row.model, row.metric, row.defense, row.attack, float(row.eps))
        if key in cells:
            raise InputError(f"two results for {row.task}/{row.model}/{row.metric}, defense {row.defense!r}, "
                             f"attack {row.attack!r}, eps {row.eps:g}")
        cells[key] = row
    attack_keys = _attack_keys(cross_rows)
    body: list[tuple[str, ...]] = []
    previous: tuple[str, ...] = ()
    for group in _first_seen((r.task, r.model, r.metric) for r in cross_rows):
        for defense in _first_seen(r.defense for r in cross_rows if (r.task, r.model, r.metric) == group):
            clean = [r.value for r in cross_rows if (r.task, r.model, r.metric, r.defense) == (*group, defense)
                     and r.attack == CLEAN]
            values = [percent(clean[0] if clean else None)]
            for attack, eps in attack_keys:
                row = cells.get((*group, defense, attack, eps))
                values.append(percent(None if row is None else row.value))
            # show each key only where it (or a key to its left) changes, as the paper's group headers
            shown = [key if group[: i + 1] != previous[: i + 1] else "" for i, key in enumerate(group)]
            previous = group
            body.append((*shown, defense, *values))
    header = ("Task", "Model", "Metric", "Defense", CLEAN, *_attack_columns(attack_keys))
    return Table("Cross-task results (%)", header, tuple(body), numeric_from=4)


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


def table_to_markdown(table: Table, heading_level: int = 3) -> str:
    """Render a :class:`Table` as a Markdown heading and pipe table (text columns left, numbers right)."""
    align = [":--" if i < table.numeric_from else "--:" for i in range(len(table.header))]
    lines = [f"{'#' * heading_level} {table.title}", ""]
    for cells in (table.header, align, *table.body):
        lines.append("| " + " | ".join(_escape_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_table(
    rows: Iterable[Row | Mapping[str, Any]], metric: str = "success_rate", target: str | None = None
) -> str:
    """Table 1-style Markdown for ``metric``: one block per target model (see :func:`classification_tables`).

    Example:
        >>> print(markdown_table([{"source": "lite0", "attack": "fgsm", "eps": 16, "defense": "none",
        ...     "target": "lite2", "images": 20, "top1": 0.85, "success_rate": 0.15, "clean_top1": 0.9}]))
        ### Target: lite2 — attack success rate (%)
        <BLANKLINE>
        | Source | Defense | clean top-1 | fgsm |
        | :-- | :-- | --: | --: |
        | lite0 | none | 90.0 | 15.0 |
        <BLANKLINE>
    """
    return "\n".join(table_to_markdown(t) for t in classification_tables(rows, metric, target))


def cross_task_markdown(cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]]) -> str:
    """Markdown for the cross-task results: rows (task, model, metric, defense) x columns attacks."""
    return table_to_markdown(cross_task_table(cross_rows))


def report_tables(
    rows: Iterable[Row | Mapping[str, Any]],
    cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]] = (),
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, list[Table]]:
    """Every table of a report, keyed by section: each metric with at least one value, then ``"cross_task"``."""
    rows, cross_rows = as_rows(rows), as_cross_task_rows(cross_rows)
    sections: dict[str, list[Table]] = {}
    for metric in metrics:
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        if any(getattr(r, metric) is not None for r in rows if r.attack != CLEAN):
            sections[metric] = classification_tables(rows, metric)
    if cross_rows:
        sections["cross_task"] = [cross_task_table(cross_rows)]
    return sections


def write_markdown(
    path: str | os.PathLike,
    rows: Iterable[Row | Mapping[str, Any]],
    cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]] = (),
    *,
    title: str = "Results",
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Path:
    """Write every table of :func:`report_tables` to one Markdown file, atomically; return its path."""
    parts = [f"# {title}\n"]
    for section, tables in report_tables(rows, cross_rows, metrics).items():
        name = "Cross-task" if section == "cross_task" else METRICS[section].capitalize()
        parts.append(f"## {name}\n")
        parts.extend(table_to_markdown(t) for t in tables)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
