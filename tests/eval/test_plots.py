"""Figures 3 and 6 of nrp.eval.reports.plots: valid PNGs of the stated size carrying the given values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from nrp.errors import InputError
from nrp.eval.reports import plot_accuracy_vs_eps, plot_accuracy_vs_iterations, plot_iterations
from nrp.eval.reports.plots import DPI, ITERATIONS_FIGSIZE, SINGLE_FIGSIZE, MatplotlibMissingError

pytest.importorskip("matplotlib")

# given out of order, to check each line is sorted by iterations
POINTS = [
    {"attack": "i_fgsm", "iterations": 10, "fooling_rate": 0.20, "feature_distortion": 0.8, "top1": 0.60},
    {"attack": "i_fgsm", "iterations": 1, "fooling_rate": 0.40, "feature_distortion": 1.5, "top1": 0.30},
    {"attack": "mi_fgsm", "iterations": 1, "fooling_rate": 0.40, "feature_distortion": 1.5, "top1": 0.30},
    {"attack": "mi_fgsm", "iterations": 10, "fooling_rate": 0.55, "feature_distortion": 1.6, "top1": 0.25},
    {"attack": "ssp", "iterations": 1, "fooling_rate": 0.30, "feature_distortion": 2.0, "top1": 0.50},
    {"attack": "ssp", "iterations": 10, "fooling_rate": 0.70, "feature_distortion": 4.0, "top1": 0.10},
]


def lines(axes) -> dict[str, tuple[list[float], list[float]]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()}


def assert_png(path: Path, figsize: tuple[float, float]) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(figsize[0] * DPI), round(figsize[1] * DPI))
        image.verify()


def test_plot_iterations_is_figure_3(tmp_path: Path) -> None:
    figure = plot_iterations(POINTS, tmp_path / "fig3.png")
    assert_png(tmp_path / "fig3.png", ITERATIONS_FIGSIZE)
    fooling, distortion = figure.axes
    assert list(lines(fooling)) == ["I-FGSM", "MI-FGSM", "SSP"]
    assert lines(fooling)["I-FGSM"] == ([1, 10], pytest.approx([40.0, 20.0]))
    assert lines(fooling)["MI-FGSM"] == ([1, 10], pytest.approx([40.0, 55.0]))
    assert lines(fooling)["SSP"] == ([1, 10], pytest.approx([30.0, 70.0]))
    assert lines(distortion)["SSP"] == ([1, 10], pytest.approx([2.0, 4.0]))
    assert lines(distortion)["I-FGSM"] == ([1, 10], pytest.approx([1.5, 0.8]))
    assert "fooling rate" in fooling.get_ylabel() and "iterations" in distortion.get_xlabel()


def test_plot_accuracy_vs_iterations_is_figure_6(tmp_path: Path) -> None:
    figure = plot_accuracy_vs_iterations(POINTS, tmp_path / "fig6.png")
    assert_png(tmp_path / "fig6.png", SINGLE_FIGSIZE)
    (axes,) = figure.axes
    assert lines(axes)["MI-FGSM"] == ([1, 10], pytest.approx([30.0, 25.0]))
    assert lines(axes)["SSP"] == ([1, 10], pytest.approx([50.0, 10.0]))
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["I-FGSM", "MI-FGSM", "SSP"]
    assert axes.get_ylabel() == "top-1 accuracy (%)"
    assert figure.get_suptitle() == ""  # no title unless given


def test_plots_carry_the_given_title_and_value(tmp_path: Path) -> None:
    points = [{"attack": "ssp", "iterations": i, "agreement": a} for i, a in ((1, 0.9), (5, 0.4))]
    figure = plot_accuracy_vs_iterations(points, tmp_path / "fig6.png", title="lite2 behind NRP, 10 photos",
                                         value="agreement", ylabel="agreement (%)")
    assert figure.get_suptitle() == "lite2 behind NRP, 10 photos"
    assert lines(figure.axes[0])["SSP"] == ([1, 5], pytest.approx([90.0, 40.0]))
    assert figure.axes[0].get_ylabel() == "agreement (%)"
    figure = plot_iterations(POINTS, tmp_path / "fig3.png", title="Figure 3")
    assert figure.get_suptitle() == "Figure 3"


def test_plot_accuracy_vs_eps(tmp_path: Path) -> None:
    points = [{"attack": "ssp", "eps": e, "top1": t} for e, t in ((16, 0.1), (4, 0.5), (8, 0.25))]
    figure = plot_accuracy_vs_eps(points, tmp_path / "eps.png")
    assert_png(tmp_path / "eps.png", SINGLE_FIGSIZE)
    assert lines(figure.axes[0]) == {"SSP": ([4, 8, 16], pytest.approx([50.0, 25.0, 10.0]))}
    assert figure.axes[0].get_ylabel() == "top-1 accuracy (%)"


def test_plots_reject_incomplete_points_and_other_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"lacks \['feature_distortion'\]"):
        plot_iterations([{"attack": "ssp", "iterations": 1, "fooling_rate": 0.1}], tmp_path / "a.png")
    with pytest.raises(InputError, match="no curve points"):
        plot_accuracy_vs_eps([], tmp_path / "b.png")
    with pytest.raises(InputError, match="as PNG"):
        plot_accuracy_vs_iterations(POINTS, tmp_path / "c.svg")
    assert not any(tmp_path.iterdir())


def test_missing_matplotlib_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MatplotlibMissingError, match=r"pip install 'nrp-purifier\[eval\]'"):
        plot_accuracy_vs_iterations(POINTS, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
