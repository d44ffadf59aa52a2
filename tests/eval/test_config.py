"""Experiment files: components, labels, validation with one-line errors, flags over file keys."""

from __future__ import annotations

import pytest

from nrp.errors import InputError
from nrp.eval.config import Component
from nrp.eval.experiment_file import load_eval_config


def write(tmp_path, text: str):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


BASE = "images: imgs\nout: run\ntargets: [m]\n"


def test_components_and_default_labels():
    assert Component.parse("jpeg", "defense") == Component("jpeg", {}, "jpeg")
    parsed = Component.parse({"name": "jpeg", "quality": 75}, "defense")
    assert parsed.params == {"quality": 75} and parsed.label == "jpeg(quality=75)"
    assert Component.parse({"name": "nrp", "weights": "models/NRP.pth"}, "defense").label == "nrp(weights=NRP.pth)"
    assert Component.parse("nrp_lite_shipped", "defense").label == "nrp_lite_shipped"
    assert Component.parse({"name": "nrp_lite_shipped"}, "defense").label == "nrp_lite_shipped(weights=nrp_lite_effl0_stage2.safetensors)"
    assert Component.parse({"name": "tvm", "label": "TVM"}, "defense").label == "TVM"
    with pytest.raises(InputError, match="mapping with a 'name' key"):
        Component.parse({"quality": 75}, "defense")


def test_flags_override_the_file_and_comma_lists_split(tmp_path):
    path = write(tmp_path, BASE + "sources: [a]\nattacks: [fgsm]\neps: [8]\n")
    config = load_eval_config(path, {"targets": "x,y", "eps": [4.0, 16.0], "out": "elsewhere", "batch_size": None})
    assert config.targets == ["x", "y"] and config.eps == [4.0, 16.0] and config.out == "elsewhere"
    assert config.batch_size == 16


@pytest.mark.parametrize("extra, message", [
    ("unknown: 1\n", "experiment.yaml: unknown: unknown key; known: images, labels"),
    ("eps: [300]\n", r"experiment.yaml: eps\[0\]: expected a finite number in \[0, 255\], got 300"),
    ("attacks: [fgsm]\n", "transfer attacks need source models"),
    ("defenses: [jpeg, jpeg]\n", "defense labels must be unique"),
    ("batch_size: 0\n", "batch_size: expected an integer >= 1, got 0"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, extra, message):
    with pytest.raises(InputError, match=message):
        load_eval_config(write(tmp_path, BASE + extra), {})


def test_label_free_attacks_need_no_source(tmp_path):
    path = write(tmp_path, BASE + "attacks: [{name: ssp}, {name: precomputed, folder: x}]\n")
    assert [a.name for a in load_eval_config(path, {}).attack_components()] == ["ssp", "precomputed"]


def test_shipped_experiment_files_load():
    from pathlib import Path
    root = Path(__file__).parents[2] / "configs"
    for name in ("table1.yaml", "table2_cda.yaml", "table5_ssp.yaml"):
        config = load_eval_config(root / name, {})
        assert config.targets and config.defense_components()


def test_the_issue13_validation_file_scores_every_input_transformation_baseline():
    # Issue 13's target is "above every input-transformation baseline in every column": the one validation
    # experiment must score each of them, and each entry's parameters must be ones its defense takes.
    from pathlib import Path

    from nrp.defenses import DEFENSES, create_defense
    config = load_eval_config(Path(__file__).parents[2] / "configs" / "issue13_validation.yaml", {})
    components = config.defense_components()
    baselines = {name for name in DEFENSES if name != "none" and not name.startswith(("nrp", "jpeg_"))}
    assert baselines == {"jpeg", "tvm", "median", "random_resize_pad", "bit_depth", "gaussian"}
    assert baselines <= {c.name for c in components}
    assert {"none", "nrp_lite_shipped", "nrp_lite_shipped_dynamic"} <= {c.name for c in components}
    for component in components:
        if component.name in baselines:
            create_defense(component.name, **component.params)


def test_the_preprocessing_of_a_zoo_model_is_set_from_the_experiment_file(tmp_path, monkeypatch):
    import torch

    import nrp.eval.models
    from nrp.eval.models import ModelBank
    from nrp.zoo import create_model
    # Random weights: the bank's zoo call, with its options, but nothing downloaded.
    monkeypatch.setattr(nrp.eval.models, "as_classifier", lambda name, **options: create_model(name, pretrained=False, **options))
    path = write(tmp_path, BASE + "preprocessing:\n  resnet18: {crop_pct: 1.0, interpolation: bicubic, antialias: false}\n")
    config = load_eval_config(path, {})
    model = ModelBank(torch.device("cpu"), preprocessing=config.preprocessing).classifier("resnet18")
    assert (model.crop_pct, model.interpolation, model.antialias) == (1.0, "bicubic", False)


def test_unknown_preprocessing_keys_are_refused_listing_the_known_ones(tmp_path):
    path = write(tmp_path, BASE + "preprocessing:\n  inc_v3: {crop: 1.0}\n")
    with pytest.raises(InputError, match="preprocessing.inc_v3.crop: unknown key; known: input_size, crop_pct"):
        load_eval_config(path, {})


def test_every_evaluation_module_can_be_imported_first():
    # No import cycle: each module can be the first nrp module imported (a cycle shows as an ImportError in some
    # order). One interpreter: torch stays loaded, nrp's modules are dropped before each import.
    import os
    import subprocess
    import sys
    from pathlib import Path

    import nrp.eval
    folder = Path(nrp.eval.__file__).parent
    names = sorted(f"nrp.eval.{path.stem}" for path in folder.glob("*.py") if path.stem != "__init__")
    script = ("import importlib, sys, torch, torchvision\n"
              "for name in sys.argv[1:]:\n"
              "    for loaded in [m for m in sys.modules if m == 'nrp' or m.startswith('nrp.')]:\n"
              "        del sys.modules[loaded]\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except ImportError as error:\n"
              "        sys.exit(f'{name}: {error}')\n")
    result = subprocess.run([sys.executable, "-c", script, *names, "nrp.zoo", "nrp.features"], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(folder.parents[1])})
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
