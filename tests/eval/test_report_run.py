"""What ``nrp eval`` puts in its report: the grid chosen by its stated rule, curves reused when a run resumes."""

from __future__ import annotations

import json

import torch

import nrp.eval.run as run_module
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.run import CURVES_FILE, run_evaluation

from .conftest import BoundaryClassifier


def config_for(images, labels, out, iterations=(1, 2)) -> EvalConfig:
    config = EvalConfig(images=str(images), labels=str(labels), image_size=24, out=str(out), sources=["boundary"],
                        attacks=[{"name": "fgsm", "label": "FGSM"}], eps=[16], batch_size=4, grid_images=4,
                        defenses=[{"name": "none", "label": "No defense"}, {"name": "bit_depth", "bits": 2, "label": "Bits"}],
                        targets=["boundary"], grid_defense="Bits",
                        curves={"source": "boundary", "target": "boundary", "backbone": "tiny", "layer": "conv",
                                "iterations": list(iterations), "images": 4})
    check_config(config)
    return config


def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"boundary": BoundaryClassifier(), "tiny:conv": torch.nn.Conv2d(3, 4, 3)}


def test_the_grid_caption_states_its_rule_and_the_defense_restores_what_it_shows(boundary_images, tmp_path):
    images, labels = boundary_images
    paths = run_evaluation(config_for(images, labels, tmp_path / "run"), models())
    page = paths["html"].read_text(encoding="utf-8")
    # FGSM at 16/255 flips every photo of the boundary classifier and 2-bit depth reduction undoes it exactly
    assert "the first 4 photos (in file order) that the attack fools and Bits restores" in page
    assert "6 restored and 0 not restored of 6 fooled" in page
    assert "crafted on boundary, eps 16/255" in page
    markdown = paths["report_markdown"].read_text(encoding="utf-8")
    assert "*Rows: the first 4 photos" in markdown and "![grid.png](grid.png)" in markdown


def test_a_resumed_run_reuses_its_curves_until_their_settings_change(boundary_images, tmp_path, monkeypatch):
    images, labels = boundary_images
    first = run_evaluation(config_for(images, labels, tmp_path / "run"), models())
    stored = json.loads((tmp_path / "run" / CURVES_FILE).read_text())["points"]
    computed = []
    original = run_module.iteration_curves

    def counting(*args, **kwargs):
        computed.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "iteration_curves", counting)
    again = run_evaluation(config_for(images, labels, tmp_path / "run"), models())
    assert computed == []  # nothing recomputed on resume
    assert json.loads(again["json"].read_text())["rows"] == json.loads(first["json"].read_text())["rows"]
    run_evaluation(config_for(images, labels, tmp_path / "run", iterations=(1, 3)), models())
    assert computed == [1]
    points = json.loads((tmp_path / "run" / CURVES_FILE).read_text())["points"]
    assert sorted({p["iterations"] for p in points}) == [1, 3] != sorted({p["iterations"] for p in stored})


def test_progress_numbers_every_stage_against_the_plan_and_logs_without_carriage_returns(boundary_images, tmp_path):
    import io

    from nrp.cli.progress import StageProgress, stage_plan
    images, labels = boundary_images
    config = config_for(images, labels, tmp_path / "run")
    plan = stage_plan(config)
    log = io.StringIO()  # not a terminal, as a log file or CI
    run_evaluation(config, models(), progress=StageProgress(plan, log))
    lines = log.getvalue().splitlines()
    started = [line.split("] ", 1)[1].split(":")[0] for line in lines if line.endswith("images ...")]
    assert started == plan  # every stage that ran is in the plan, in the plan's order
    assert lines[0] == f"nrp: [1/{len(plan)}] clean images: 6 images ..." and "\r" not in log.getvalue()
    assert sum(line.endswith("s)") and ": done (" in line for line in lines) == len(plan)
    resumed = io.StringIO()
    run_evaluation(config_for(images, labels, tmp_path / "run", iterations=(1, 3)), models(), progress=StageProgress(plan, resumed))
    assert resumed.getvalue().splitlines()[0] == f"nrp: [{len(plan)}/{len(plan)}] curves (Figures 3 and 6): 4 images ..."
