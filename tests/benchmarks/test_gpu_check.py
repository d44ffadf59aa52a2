"""``benchmarks/gpu_check.py --quick`` runs end to end on a CPU and writes the one JSON file it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_quick_gpu_check_writes_every_figure(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "check.json"
    gpu_check.main(["--quick", "--skip-tests", "--device", "cpu", "--peak-tflops", "1.0", "--out", str(out)])
    results = json.loads(out.read_text())
    assert set(results["training"]) == set(results["purification"]) == {"nrp", "nrp_resg"}
    for measured in results["training"].values():
        seconds = measured["median_seconds"]
        assert measured["precision"] == "fp32"  # auto on a CPU
        assert seconds["iteration"] == seconds["ssp"] + seconds["purifier_step"] + seconds["critic_step"] > 0
        assert measured["iteration_over_floors"] == seconds["iteration"] / seconds["floors"]
    for measured in results["purification"].values():
        assert measured["flops_per_batch"] > 0
        for precision in ("fp32", "bf16"):
            assert measured[precision]["tflops"] == measured["flops_per_batch"] / measured[precision]["seconds_per_batch"] / 1e12
            assert measured[precision]["share_of_dense_bf16_peak"] == measured[precision]["tflops"] / 1.0
