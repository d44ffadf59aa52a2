"""``nrp eval`` end to end on tiny models: every report file, with the numbers of the constructed case."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from nrp.cli.main import main
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.run import run_evaluation

from .conftest import LABELS


def test_full_run_writes_every_report_file_with_known_numbers(grey_images, tmp_path, tiny_models):
    folder, labels = grey_images
    config = EvalConfig(images=str(folder), labels=str(labels), image_size=32, out=str(tmp_path / "run"), sources=["right"],
                        attacks=["fgsm", "mi_fgsm"], eps=[8, 16], defenses=["none", {"name": "jpeg", "quality": 75}],
                        targets=["right", "constant"], batch_size=4, grid_images=3,
                        curves={"source": "right", "target": "right", "backbone": "tiny", "layer": "conv",
                                "iterations": [1, 2], "images": 4})
    check_config(config)
    import torch
    torch.manual_seed(0)
    paths = run_evaluation(config, dict(tiny_models, **{"tiny:conv": torch.nn.Conv2d(3, 4, 3)}))
    for kind in ("json", "csv", "markdown", "html"):
        assert paths[kind].is_file(), kind
    results = json.loads(paths["json"].read_text())
    rows = results["rows"]
    assert len(rows) == (1 + 2 * 2) * 2 * 2  # (clean + 2 attacks x 2 eps) x 2 defenses x 2 targets
    right = [r for r in rows if r["target"] == "right"]
    assert all(r["top1"] == 1.0 and r["success_rate"] == 0.0 for r in right)
    constant = [r for r in rows if r["target"] == "constant"]
    assert all(r["top1"] == pytest.approx(LABELS.count(0) / len(LABELS)) for r in constant)
    assert results["config"]["eps"] == [8, 16] and results["seed"] == 0
    grid = tmp_path / "run" / "report" / "grid.png"
    with Image.open(grid) as image:
        assert image.width > 3 * 32 and image.height > 3 * 32
    if "plot_iterations" in paths:
        assert paths["plot_iterations"].is_file() and paths["plot_accuracy_vs_eps"].is_file()
    assert "grid.png" in paths["html"].read_text()


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("images: nowhere\nout: run\ntargets: [x]\nunknown_key: 1\n")
    assert main(["eval", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"nrp: error: {config}: images: folder 'nowhere' does not exist (2 more: targets[0], unknown_key)"
