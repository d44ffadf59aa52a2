"""``write_report``: every report file of an evaluation run, in one folder."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nrp.errors import InputError
from nrp.eval.reports.html import Section, write_html
from nrp.eval.reports.plots import MatplotlibMissingError, plot_accuracy_vs_eps, plot_accuracy_vs_iterations, plot_iterations
from nrp.eval.reports.results import write_csv, write_results_json
from nrp.eval.reports.rows import METRICS, CrossTaskRow, Row, as_cross_task_rows, as_rows
from nrp.eval.reports.tables import DEFAULT_METRICS, report_tables, write_markdown

logger = logging.getLogger(__name__)

_NOTES = {
    "success_rate": "Share of images the defended target misclassifies (the paper's Table 1; lower is better).",
    "fooling_rate": "Share of images whose defended prediction differs from the defended clean prediction.",
    "top1": "Top-1 accuracy of the defended target (higher is better).",
    "top5": "Top-5 accuracy of the defended target (higher is better).",
    "cross_task": "Task metrics of the defended models, in percent (higher is better).",
}

CURVE_KINDS = ("iterations", "eps")
"""Keys of ``curves``: points against attack iterations, and points against eps."""


def _has(points: Sequence[Mapping[str, Any]], *keys: str) -> bool:
    return all(point.get(key) is not None for point in points for key in keys)


def _write_plots(out_dir: Path, curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Path]:
    unknown = sorted(set(curves) - set(CURVE_KINDS))
    if unknown:
        raise InputError(f"unknown curve kinds {unknown}; known: {', '.join(CURVE_KINDS)}")
    jobs = []
    iterations, eps = list(curves.get("iterations", ())), list(curves.get("eps", ()))
    if iterations and _has(iterations, "fooling_rate", "feature_distortion"):
        jobs.append(("plot_iterations", plot_iterations, iterations, "iterations.png"))
    if iterations and _has(iterations, "top1"):
        jobs.append(("plot_accuracy_vs_iterations", plot_accuracy_vs_iterations, iterations, "accuracy_vs_iterations.png"))
    if eps and _has(eps, "top1"):
        jobs.append(("plot_accuracy_vs_eps", plot_accuracy_vs_eps, eps, "accuracy_vs_eps.png"))
    written: dict[str, Path] = {}
    for key, plot, points, name in jobs:
        try:
            plot(points, out_dir / name)
        except MatplotlibMissingError as error:
            logger.warning("skipping the plots: %s", error)
            return written
        written[key] = out_dir / name
    return written


def write_report(
    out_dir: str | os.PathLike,
    rows: Iterable[Row | Mapping[str, Any]],
    cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]],
    config: Mapping[str, Any],
    seed: int,
    grids: Sequence[str | os.PathLike] = (),
    curves: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    title: str = "NRP evaluation",
    metrics: Sequence[str] = DEFAULT_METRICS,
    embed_images: bool = False,
) -> dict[str, Path]:
    """Write results.json, results.csv (and cross_task.csv), results.md, the plots and index.html.

    Plots are drawn when ``curves`` is given and matplotlib is installed (a warning is logged otherwise):
    ``curves["iterations"]`` points give ``iterations.png`` (Figure 3, when they carry ``fooling_rate`` and
    ``feature_distortion``) and ``accuracy_vs_iterations.png`` (Figure 6, when they carry ``top1``);
    ``curves["eps"]`` points give ``accuracy_vs_eps.png``. Every file is written atomically.

    Args:
        out_dir: the report folder (created).
        rows: classification records (:class:`Row` or dicts).
        cross_rows: cross-task records (:class:`CrossTaskRow` or dicts).
        config: the run's configuration, stored in results.json and shown on the page.
        seed: the run's random seed.
        grids: image-grid PNGs already written (see :func:`~nrp.eval.reports.grid.image_grid`), shown on the page.
        curves: curve points keyed by :data:`CURVE_KINDS`, or None.
        extra: more to keep in results.json.
        title: the page's title.
        metrics: classification metrics to tabulate (those with no values are left out).
        embed_images: inline the images in index.html instead of linking them.

    Returns:
        Written paths keyed ``"json"``, ``"csv"``, ``"cross_task_csv"`` (with cross-task rows), ``"markdown"``,
        ``"plot_iterations"``, ``"plot_accuracy_vs_iterations"``, ``"plot_accuracy_vs_eps"`` (those drawn)
        and ``"html"``.

    Raises:
        InputError: invalid records, an unknown metric or curve kind, or a grid file that does not exist.
    """
    out_dir = Path(out_dir)
    rows, cross_rows = as_rows(rows), as_cross_task_rows(cross_rows)
    grids = [Path(g) for g in grids]
    missing = [str(g) for g in grids if not g.is_file()]
    if missing:
        raise InputError(f"image grids not found: {', '.join(missing)}")
    written = {
        "json": write_results_json(out_dir / "results.json", rows, cross_rows, config, seed, extra),
        "csv": write_csv(out_dir / "results.csv", rows),
    }
    if cross_rows:
        written["cross_task_csv"] = write_csv(out_dir / "cross_task.csv", cross_rows)
    written["markdown"] = write_markdown(out_dir / "results.md", rows, cross_rows, title=title, metrics=metrics)
    plots = _write_plots(out_dir, curves) if curves else {}
    written.update(plots)

    sections = []
    for key, tables in report_tables(rows, cross_rows, metrics).items():
        name = "Cross-task" if key == "cross_task" else METRICS[key].capitalize()
        sections.append(Section(name, text=_NOTES[key], tables=tables))
    if plots:
        sections.append(Section("Curves", images=list(plots.values())))
    if grids:
        sections.append(Section("Examples", images=grids))
    configuration = json.dumps({"seed": seed, **dict(config)}, indent=2, sort_keys=True, default=str)
    sections.append(Section("Configuration", preformatted=configuration))
    written["html"] = write_html(out_dir / "index.html", title, sections, embed_images=embed_images)
    return written
