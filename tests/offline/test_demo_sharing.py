"""The grey-box group reuses the black-box run's clean work: the same rows, without the clean stages run twice."""

from __future__ import annotations

import contextlib
import json
import shutil

import torch

from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.run import run_evaluation
from nrp.offline.demo import CLEAN_WORK, share_clean_work

from ..eval.conftest import BrightnessClassifier, ConstantClassifier, grey_images  # noqa: F401 (fixture)


def config(folder, labels, out, attacks) -> EvalConfig:
    made = EvalConfig(images=str(folder), labels=str(labels), image_size=32, out=str(out), sources=["right"],
                      attacks=attacks, eps=[16], defenses=["none", {"name": "random_resize_pad", "label": "R&P"}],
                      targets=["right", "constant"], batch_size=4, grid_images=0)
    check_config(made)
    return made


def recording():
    """A progress factory that records the stages that ran."""
    stages: list[str] = []

    @contextlib.contextmanager
    def progress(description, total):
        stages.append(description)
        yield type("Bar", (), {"update": lambda self, n=1: None})()

    return stages, progress


def models():
    return {"right": BrightnessClassifier(), "constant": ConstantClassifier()}


def test_shared_clean_work_gives_the_rows_of_an_unshared_run_without_its_clean_stages(grey_images, tmp_path):  # noqa: F811
    folder, labels = grey_images
    first = run_evaluation(config(folder, labels, tmp_path / "main", ["fgsm"]), models())
    alone = run_evaluation(config(folder, labels, tmp_path / "alone", ["mi_fgsm"]), models())
    copied = share_clean_work(tmp_path / "main", tmp_path / "grey")
    assert copied == 7 + 2 + 2 * 2  # 7 images, fingerprint and manifest; 2 defenses x 2 targets
    stages, progress = recording()
    shared = run_evaluation(config(folder, labels, tmp_path / "grey", ["mi_fgsm"]), models(), progress)
    assert stages == ["craft right/mi_fgsm/16", "evaluate right/mi_fgsm/16"]  # nothing clean ran again
    rows = json.loads(shared["json"].read_text())["rows"]
    assert rows == json.loads(alone["json"].read_text())["rows"]
    assert json.loads(first["json"].read_text())["rows"][:4] == rows[:4]  # the clean rows


def test_stale_shared_work_is_recomputed_and_an_existing_part_is_left_alone(grey_images, tmp_path):  # noqa: F811
    folder, labels = grey_images
    run_evaluation(config(folder, labels, tmp_path / "main", ["fgsm"]), models())
    other = EvalConfig(**{**config(folder, labels, tmp_path / "main16", ["fgsm"]).to_dict(), "image_size": 16})
    check_config(other)
    run_evaluation(other, models())
    share_clean_work(tmp_path / "main16", tmp_path / "grey")  # made at another size: stale for the grey run
    stages, progress = recording()
    run_evaluation(config(folder, labels, tmp_path / "grey", ["mi_fgsm"]), models(), progress)
    assert stages[:1] == ["clean images"] and "evaluate clean/clean/0" in stages
    clean = tmp_path / "grey" / CLEAN_WORK[0]
    before = {path.name: path.read_bytes() for path in clean.iterdir()}
    shutil.rmtree(tmp_path / "grey" / CLEAN_WORK[1])
    assert share_clean_work(tmp_path / "main16", tmp_path / "grey") == 2 * 2  # only the missing part
    assert {path.name: path.read_bytes() for path in clean.iterdir()} == before
    assert torch.load(next((tmp_path / "grey" / CLEAN_WORK[1]).rglob("*.pt")), weights_only=True)["top5"].shape == (7, 5)


def test_an_interrupted_copy_leaves_no_manifest_so_the_set_resumes_as_partial(tmp_path, monkeypatch):
    clean = tmp_path / "main" / CLEAN_WORK[0]
    clean.mkdir(parents=True)
    for name in ("a.png", "manifest.json", "z.png", "fingerprint.json"):
        (clean / name).write_text(name)
    calls, copy = [], shutil.copyfile

    def copy_three(source, target):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(source)
        copy(source, target)

    monkeypatch.setattr("nrp.offline.demo.shutil.copyfile", copy_three)
    with contextlib.suppress(KeyboardInterrupt):
        share_clean_work(tmp_path / "main", tmp_path / "grey")
    copied = sorted(path.name for path in (tmp_path / "grey" / CLEAN_WORK[0]).iterdir())
    assert copied == ["a.png", "fingerprint.json", "z.png"]  # no manifest, no half-written file
