"""``write_report``: every report file of an evaluation run, in one folder."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nrp.errors import InputError
from nrp.eval.components import Component
from nrp.eval.reports.header import introduction, photo_count, run_facts
from nrp.eval.reports.html import Figure, Section, write_html
from nrp.eval.reports.markdown_page import write_markdown_page
from nrp.eval.reports.plots import (
    AGREEMENT_LABEL,
    MatplotlibMissingError,
    plot_accuracy_vs_eps,
    plot_accuracy_vs_iterations,
    plot_iterations,
)
from nrp.eval.reports.results import write_csv, write_results_json
from nrp.eval.reports.rows import METRICS, CrossTaskRow, Row, as_cross_task_rows, as_rows
from nrp.eval.reports.tables import DEFAULT_METRICS, report_tables, write_markdown

logger = logging.getLogger(__name__)

_NOTES = {
    "success_rate": "Share of images the defended target misclassifies (the paper's Table 1; lower is better). "
                    "The first column is the defense's top-1 accuracy on the clean photos.",
    "fooling_rate": "Share of images whose defended prediction differs from the defended clean prediction "
                    "(lower is better). The first column is the defense's top-1 accuracy on the clean photos.",
    "top1": "Top-1 accuracy of the defended target (higher is better); the first column is on the clean photos.",
    "top5": "Top-5 accuracy of the defended target (higher is better). The first column is the defense's top-1 "
            "accuracy on the clean photos.",
    "cross_task": "Task metrics of the defended models, in percent (higher is better).",
}

CURVE_KINDS = ("iterations", "eps")
"""Keys of ``curves``: points against attack iterations, and points against eps."""


def _has(points: Sequence[Mapping[str, Any]], *keys: str) -> bool:
    return all(point.get(key) is not None for point in points for key in keys)


def curve_defense(config: Mapping[str, Any]) -> str | None:
    """The defense the iteration curves run behind: ``grid_defense`` when it is one of the run's, else the first."""
    labels = [Component.parse(value, "defense").label for value in config.get("defenses", [])]
    return config.get("grid_defense") if config.get("grid_defense") in labels else (labels[0] if labels else None)


def curve_captions(config: Mapping[str, Any], count: int | None, labelled: bool = True) -> dict[str, tuple[str, str]]:
    """``{plot key: (title, caption)}``, naming the source, target, defense and photo count of each plot.

    ``labelled``: Figure 6 plots top-1 accuracy against the labels; else the label-free agreement.
    """
    curves = dict(config.get("curves") or {})
    source, target = curves.get("source", "the source"), curves.get("target", "the target")
    images, eps = curves.get("images"), curves.get("eps", 16)
    photos = f"{images} photos" if images else "the first photos"
    defense = curve_defense(config) or "its defense"
    ssp = f"{curves['backbone']}:{curves['layer']}" if curves.get("backbone") and curves.get("layer") else "its feature extractor"
    crafted = f"crafted on {source} (SSP on {ssp}), eps {eps:g}/255, {photos}"
    eps_target = (config.get("targets") or ["the first target"])[0]
    return {
        "plot_iterations": (
            f"Figure 3: {target}, undefended; attacks {crafted}",
            f"Left: share of the {photos} whose undefended {target} prediction changes, against the attack's "
            f"iterations; right: mean feature distortion |F(x') - F(x)| on {ssp}, the quantity SSP maximises."),
        "plot_accuracy_vs_iterations": (
            f"Figure 6: {target} behind {defense}; attacks {crafted}",
            (f"Top-1 accuracy of {target} behind {defense} on the {photos}" if labelled else
             f"Share of the {photos} whose prediction by {target} behind {defense} stays what it was on the clean "
             f"photo (agreement, not accuracy: the set has no labels)") + ", against the attack's iterations."),
        "plot_accuracy_vs_eps": (
            f"{eps_target}: top-1 accuracy against eps" + (f" ({count} photos)" if count else ""),
            f"Top-1 accuracy of {eps_target} behind each defense (one line per attack / defense) against the "
            f"L-inf budget eps, in 1/255 units."),
    }


def _write_plots(out_dir: Path, curves: Mapping[str, Sequence[Mapping[str, Any]]],
                 captions: Mapping[str, tuple[str, str]]) -> dict[str, Figure]:
    unknown = sorted(set(curves) - set(CURVE_KINDS))
    if unknown:
        raise InputError(f"unknown curve kinds {unknown}; known: {', '.join(CURVE_KINDS)}")
    jobs = []
    iterations, eps = list(curves.get("iterations", ())), list(curves.get("eps", ()))
    if iterations and _has(iterations, "fooling_rate", "feature_distortion"):
        jobs.append(("plot_iterations", plot_iterations, iterations, "iterations.png", {}))
    if iterations and _has(iterations, "top1"):
        jobs.append(("plot_accuracy_vs_iterations", plot_accuracy_vs_iterations, iterations, "accuracy_vs_iterations.png", {}))
    elif iterations and _has(iterations, "agreement"):
        jobs.append(("plot_accuracy_vs_iterations", plot_accuracy_vs_iterations, iterations, "accuracy_vs_iterations.png",
                     {"value": "agreement", "ylabel": AGREEMENT_LABEL}))
    if eps and _has(eps, "top1"):
        jobs.append(("plot_accuracy_vs_eps", plot_accuracy_vs_eps, eps, "accuracy_vs_eps.png", {}))
    written: dict[str, Figure] = {}
    for key, plot, points, name, options in jobs:
        title, caption = captions[key]
        try:
            plot(points, out_dir / name, title=title, **options)
        except MatplotlibMissingError as error:
            logger.warning("skipping the plots: %s", error)
            return written
        written[key] = Figure(out_dir / name, caption)
    return written


def write_report(
    out_dir: str | os.PathLike,
    rows: Iterable[Row | Mapping[str, Any]],
    cross_rows: Iterable[CrossTaskRow | Mapping[str, Any]],
    config: Mapping[str, Any],
    seed: int,
    grids: Sequence[str | os.PathLike | Figure] = (),
    curves: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    title: str = "NRP evaluation",
    metrics: Sequence[str] = DEFAULT_METRICS,
    embed_images: bool = False,
) -> dict[str, Path]:
    """Write results.json, results.csv (and cross_task.csv), results.md, the plots, index.html and report.md.

    The pages (index.html, and report.md for repository browsers) open with what ran, read off ``config``
    (:mod:`~nrp.eval.reports.header`), then the first metric's tables, the image grids, the other tables,
    the plots with captions and the configuration. Plots are drawn when ``curves`` is given and matplotlib is installed (a warning is logged otherwise):
    ``curves["iterations"]`` points give ``iterations.png`` (Figure 3, when they carry ``fooling_rate`` and
    ``feature_distortion``) and ``accuracy_vs_iterations.png`` (Figure 6, when they carry ``top1``);
    ``curves["eps"]`` points give ``accuracy_vs_eps.png``. Every file is written atomically.

    Args:
        out_dir: the report folder (created).
        rows: classification records (:class:`Row` or dicts).
        cross_rows: cross-task records (:class:`CrossTaskRow` or dicts).
        config: the run's configuration, stored in results.json and shown on the page.
        seed: the run's random seed.
        grids: image-grid PNGs already written (see :func:`~nrp.eval.reports.grid.image_grid`), as paths or as
            :class:`~nrp.eval.reports.html.Figure` s with the caption that says how their rows were chosen.
        curves: curve points keyed by :data:`CURVE_KINDS`, or None.
        extra: more to keep in results.json.
        title: the page's title.
        metrics: classification metrics to tabulate (those with no values are left out).
        embed_images: inline the images in index.html instead of linking them.

    Returns:
        Written paths keyed ``"json"``, ``"csv"``, ``"cross_task_csv"`` (with cross-task rows), ``"markdown"``,
        ``"plot_iterations"``, ``"plot_accuracy_vs_iterations"``, ``"plot_accuracy_vs_eps"`` (those drawn),
        ``"html"`` and ``"report_markdown"``.

    Raises:
        InputError: invalid records, an unknown metric or curve kind, or a grid file that does not exist.
    """
    out_dir = Path(out_dir)
    rows, cross_rows = as_rows(rows), as_cross_task_rows(cross_rows)
    figures = [g if isinstance(g, Figure) else Figure(Path(g)) for g in grids]
    missing = [str(f.path) for f in figures if not f.path.is_file()]
    if missing:
        raise InputError(f"image grids not found: {', '.join(missing)}")
    written = {
        "json": write_results_json(out_dir / "results.json", rows, cross_rows, config, seed, extra),
        "csv": write_csv(out_dir / "results.csv", rows),
    }
    if cross_rows:
        written["cross_task_csv"] = write_csv(out_dir / "cross_task.csv", cross_rows)
    written["markdown"] = write_markdown(out_dir / "results.md", rows, cross_rows, title=title, metrics=metrics)
    labelled = bool(curves) and _has(list(curves.get("iterations", ())), "top1")
    plots = _write_plots(out_dir, curves, curve_captions(config, photo_count(rows), labelled)) if curves else {}
    written.update({key: figure.path for key, figure in plots.items()})

    sections = [Section("What ran", text=introduction(config, rows), facts=run_facts(config, rows))]
    for key, tables in report_tables(rows, cross_rows, metrics).items():
        name = "Cross-task" if key == "cross_task" else METRICS[key].capitalize()
        sections.append(Section(name, text=_NOTES[key], tables=tables))
        if figures and len(sections) == 2:  # the examples right after the headline tables
            sections.append(Section("Examples", images=figures))
    if figures and len(sections) == 1:
        sections.append(Section("Examples", images=figures))
    if plots:
        sections.append(Section("Curves", images=list(plots.values())))
    configuration = json.dumps({"seed": seed, **dict(config)}, indent=2, sort_keys=True, default=str)
    sections.append(Section("Configuration", preformatted=configuration))
    written["html"] = write_html(out_dir / "index.html", title, sections, embed_images=embed_images)
    written["report_markdown"] = write_markdown_page(out_dir / "report.md", title, sections)
    return written
