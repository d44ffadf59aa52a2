"""Two CPU processes under torchrun (gloo) evaluate exactly like one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from nrp.eval.experiment_file import load_eval_config
from nrp.eval.run import run_evaluation

from .conftest import BrightnessClassifier, ConstantClassifier


def test_two_gloo_processes_give_the_one_process_results_and_images(grey_images, tmp_path):
    folder, labels = grey_images
    models = {}
    for name, module in (("right", BrightnessClassifier()), ("constant", ConstantClassifier())):
        models[name] = str(tmp_path / f"{name}.pt")
        torch.jit.save(torch.jit.script(module), models[name])
    experiment = {"images": str(folder), "labels": str(labels), "image_size": 16, "sources": [models["right"]],
                  "attacks": [{"name": "pgd", "steps": 2, "label": "pgd"}, "dim"], "eps": [16], "batch_size": 2,
                  "defenses": ["none", "random_resize_pad"], "targets": [models["right"], models["constant"]], "grid_images": 0,
                  "device": "cpu"}
    config_file = tmp_path / "experiment.yaml"
    config_file.write_text(yaml.safe_dump(experiment))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nrp.cli.main",
               "eval", str(config_file), "--out", str(tmp_path / "two")]
    result = subprocess.run(command, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run_evaluation(load_eval_config(config_file, {"out": str(tmp_path / "one")}))
    two = json.loads((tmp_path / "two" / "report" / "results.json").read_text())["rows"]
    one = json.loads((tmp_path / "one" / "report" / "results.json").read_text())["rows"]
    assert two == one and len(one) == 3 * 2 * 2
    stored = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "sets").rglob("*.png"))
    assert len(stored) == 3 * 7
    for relative in stored:
        assert (tmp_path / "two" / relative).read_bytes() == (tmp_path / "one" / relative).read_bytes()
