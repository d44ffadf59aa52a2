"""Line plots after the paper's Figures 3 and 6 (Appendix F), written as PNG with matplotlib's Agg canvas.

matplotlib is an optional extra (``pip install 'nrp-purifier[eval]'``); it is imported only when a plot is
drawn, and its absence raises :class:`~nrp.errors.InputError`. No pyplot state is touched: every figure is
a standalone :class:`matplotlib.figure.Figure`, returned so callers (and tests) can read the plotted data.
Rates and accuracies are plotted in percent; feature distortion as given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.eval.reports.rows import attack_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
ITERATIONS_FIGSIZE = (10.0, 4.0)
"""Figure 3's size in inches (two panels side by side); pixels are ``figsize * DPI``."""
SINGLE_FIGSIZE = (6.0, 4.0)
"""Size in inches of the one-panel plots."""

INSTALL_HINT = "pip install 'nrp-purifier[eval]'"
ACCURACY_LABEL = "top-1 accuracy (%)"
AGREEMENT_LABEL = "agreement with the defended clean prediction (%)"
"""Figure 6's axis for label-free curves: the share of photos whose defended prediction is the clean one's."""


class MatplotlibMissingError(InputError):
    """matplotlib, the optional plotting dependency, is not installed."""


def _new_figure(figsize: tuple[float, float], panels: int) -> tuple[Figure, list[Axes]]:
    try:
        # the package itself first: its submodules may already sit in sys.modules, bypassing the parent
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MatplotlibMissingError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from error
    figure = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(figure)  # attaches the Agg canvas: no GUI backend, no pyplot
    axes = [figure.add_subplot(1, panels, i + 1) for i in range(panels)]
    return figure, list(axes)


def _series(points: Iterable[Mapping[str, Any]], x: str, ys: Sequence[str]) -> dict[str, list[tuple[float, ...]]]:
    """Points grouped by attack (first-seen order), each sorted by ``x``: attack -> [(x, y1, y2, ...)]."""
    series: dict[str, list[tuple[float, ...]]] = {}
    for index, point in enumerate(points):
        missing = [k for k in ("attack", x, *ys) if k not in point or point[k] is None]
        if missing:
            raise InputError(f"curve point {index} lacks {missing}: {dict(point)}")
        values = tuple(float(point[k]) for k in (x, *ys))
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"curve point {index} has a non-finite value: {dict(point)}")
        series.setdefault(str(point["attack"]), []).append(values)
    if not series:
        raise InputError("no curve points to plot")
    return {attack: sorted(values) for attack, values in series.items()}


def _save(figure: Figure, path: str | os.PathLike, title: str | None) -> None:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"plots are written as PNG; got {path}")
    if title:
        figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)


def _panel(axes: Axes, series: dict[str, list[tuple[float, ...]]], column: int, scale: float,
           xlabel: str, ylabel: str) -> None:
    for attack, values in series.items():
        axes.plot([v[0] for v in values], [v[column] * scale for v in values], marker="o", label=attack_label(attack))
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend()


def plot_iterations(points: Iterable[Mapping[str, Any]], path: str | os.PathLike, *, title: str | None = None) -> Figure:
    """The paper's Figure 3: fooling rate (%) and mean feature distortion against attack iterations.

    Two panels, one line per attack (e.g. I-FGSM, MI-FGSM, SSP), points sorted by iterations.

    Args:
        points: dicts with ``attack``, ``iterations``, ``fooling_rate`` (fraction) and ``feature_distortion``.
        path: output ``.png``; ``ITERATIONS_FIGSIZE * DPI`` pixels.
        title: the figure's title (say which source, target and how many photos), or None.

    Returns:
        The figure; ``figure.axes[0]`` holds fooling rate in percent, ``figure.axes[1]`` distortion.

    Raises:
        InputError: a point lacking a key or a suffix other than .png; :class:`MatplotlibMissingError` (an
            InputError) when matplotlib is not installed.
    """
    series = _series(points, "iterations", ("fooling_rate", "feature_distortion"))
    figure, (left, right) = _new_figure(ITERATIONS_FIGSIZE, 2)
    _panel(left, series, 1, 100.0, "attack iterations", "fooling rate (%)")
    _panel(right, series, 2, 1.0, "attack iterations", "mean feature distortion")
    _save(figure, path, title)
    return figure


def plot_accuracy_vs_iterations(
    points: Iterable[Mapping[str, Any]], path: str | os.PathLike, *, title: str | None = None,
    value: str = "top1", ylabel: str = ACCURACY_LABEL,
) -> Figure:
    """The paper's Figure 6 (Appendix F): the defended target's score (%) against attack iterations, per attack.

    The paper plots top-1 accuracy (``top1``); without labels, plot ``value="agreement"`` (the share of
    photos whose defended prediction stays the defended clean one) with ``ylabel=AGREEMENT_LABEL``.

    Args:
        points: dicts with ``attack``, ``iterations`` and ``value`` (fraction).
        path: output ``.png``; ``SINGLE_FIGSIZE * DPI`` pixels.
        title: the figure's title (say which defense, source, target and how many photos), or None.
        value: the key of the plotted fraction.
        ylabel: what the fraction is.

    Returns:
        The figure; ``figure.axes[0]`` holds one line per attack.
    """
    series = _series(points, "iterations", (value,))
    figure, (axes,) = _new_figure(SINGLE_FIGSIZE, 1)
    _panel(axes, series, 1, 100.0, "attack iterations", ylabel)
    _save(figure, path, title)
    return figure


def plot_accuracy_vs_eps(points: Iterable[Mapping[str, Any]], path: str | os.PathLike, *, title: str | None = None) -> Figure:
    """Target top-1 accuracy (%) against the L-inf budget eps (0-255 units), one line per attack.

    Args:
        points: dicts with ``attack``, ``eps`` (0-255 units) and ``top1`` (fraction).
        path: output ``.png``; ``SINGLE_FIGSIZE * DPI`` pixels.
        title: the figure's title (say which target and how many photos), or None.

    Returns:
        The figure; ``figure.axes[0]`` holds one line per attack.
    """
    series = _series(points, "eps", ("top1",))
    figure, (axes,) = _new_figure(SINGLE_FIGSIZE, 1)
    _panel(axes, series, 1, 100.0, "eps (L-inf, /255)", "top-1 accuracy (%)")
    _save(figure, path, title)
    return figure
