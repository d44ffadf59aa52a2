"""Figure 3/6 curves: every point spends the whole budget (step eps/steps), and the fields measure what they say."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.defenses import create_defense
from nrp.errors import InputError
from nrp.eval.curves import CurveConfig, iteration_curves
from nrp.eval.models import ModelBank

from .conftest import BoundaryClassifier


def curve(labels, iterations=(1, 2, 5), **settings):
    torch.manual_seed(0)
    models = ModelBank(torch.device("cpu"), provided={"edge": BoundaryClassifier(), "tiny:conv": nn.Conv2d(3, 2, 3)})
    config = CurveConfig.parse({"source": "edge", "target": "edge", "attacks": ["i_fgsm", "mi_fgsm"],
                                "iterations": list(iterations), "images": 4, "backbone": "tiny", "layer": "conv",
                                **settings})
    clean = torch.full((4, 3, 16, 16), 85 / 255)  # class 0, 8/255 below the boundary of class 1
    return iteration_curves(config, clean, models, create_defense("bit_depth", bits=2), seed=0, labels=labels)


def test_every_point_spends_the_whole_budget_so_one_step_flips_every_image():
    points = curve([0, 0, 0, 0])
    assert [(p["attack"], p["iterations"]) for p in points] == [(a, n) for a in ("i_fgsm", "mi_fgsm") for n in (1, 2, 5)]
    for point in points:
        assert point["step_size"] == pytest.approx(16 / point["iterations"])
        assert point["fooling_rate"] == 1.0  # a fixed 1.6/255 step would reach the boundary only after 5 steps
        assert point["top1"] == point["agreement"] == 1.0  # two-bit depth maps every image back to its clean pixels


def test_a_fixed_step_size_spends_only_steps_times_it():
    points = curve([0, 0, 0, 0], iterations=(1, 10), step_size=1.6)
    by_steps = {p["iterations"]: p for p in points if p["attack"] == "i_fgsm"}
    assert by_steps[1]["fooling_rate"] == 0.0 and by_steps[10]["fooling_rate"] == 1.0
    assert by_steps[1]["step_size"] == pytest.approx(1.6)


def test_top1_is_measured_against_the_labels_and_agreement_against_the_defended_clean_prediction():
    points = curve([3, 3, 0, 0])  # two wrong labels: accuracy halves, agreement does not
    assert all(p["top1"] == 0.5 and p["agreement"] == 1.0 for p in points)
    assert all(p["top1"] is None and p["agreement"] == 1.0 for p in curve(None))


@pytest.mark.parametrize("settings, message", [
    ({"step_size": "eps"}, "step_size must be 'eps/steps' or a number"),
    ({"step_size": 0}, "step_size must be"),
    ({"attacks": ["fgsm"]}, "attack 'fgsm' takes no steps and step_size"),
])
def test_bad_curve_settings_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        CurveConfig.parse({"source": "a", "target": "b", **settings})
