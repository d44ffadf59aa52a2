"""``nrp demo --cross-task --quick`` on the real YOLOv3-tiny and U²-Net-p (skipped when their files are absent)."""

from __future__ import annotations

import json

import pytest

from nrp.cli.main import main
from nrp.offline import default_cache, foolbox_photos
from nrp.offline.models import offline_model_files

pytest.importorskip("onnx2torch", reason="onnx2torch (the models extra) converts U²-Net-p")
pytest.importorskip("pycocotools", reason="pycocotools (the eval extra) scores detection")
MODELS = default_cache() / "models"
NEEDED = [MODELS / offline_model_files()[name].name for name in ("mobilenet_v2", "yolov3_tiny", "u2netp")]
if not foolbox_photos() or not all(path.is_file() for path in NEEDED):
    pytest.skip(f"the model files are not fetched into {MODELS} (run nrp data offline) or foolbox is missing",
                allow_module_level=True)


def test_quick_cross_task_demo_scores_both_tasks_against_their_own_clean_output(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(MODELS)  # no download inside a test
    out = tmp_path / "cross"
    assert main(["demo", "--cross-task", "--quick", "--out", str(out), "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert "ground truth = each network's own output" in printed
    truth = json.loads((out / "data" / "ground_truth.json").read_text())
    assert len(truth["images"]) == 2 and truth["annotations"]
    rows = json.loads((out / "report" / "results.json").read_text())["cross_task_rows"]
    cell = {(r["attack"], r["defense"], r["model"], r["metric"]): r["value"] for r in rows}
    # the ground truth is the networks' own clean output: clean scores are perfect by construction
    assert cell[("clean", "No defense", "yolov3_tiny", "bbox_map50")] == pytest.approx(1.0)
    assert cell[("clean", "No defense", "u2netp", "object_iou")] == pytest.approx(1.0)
    assert cell[("clean", "No defense", "u2netp", "pixel_accuracy")] == pytest.approx(1.0)
    attacks = {r["attack"] for r in rows} - {"clean"}
    defenses = {r["defense"] for r in rows}
    assert len(attacks) == 3 and defenses == {"No defense", "JPEG (q=75)", "TVM", "Median (3x3)", "NRP-Lite"}
    # the white-box attack on the detector's own output moves it off its clean detections
    assert cell[("SSP (YOLOv3-tiny outputs)", "No defense", "yolov3_tiny", "bbox_map50")] < 1.0
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    assert (out / "report" / "grid_cross_task.png").is_file()
