"""Stored sets and predictions are keyed by everything that shaped them; labels name folders injectively.

Each case reruns an experiment into the folder of an earlier run after one change (issue 17, case 1) and checks
that exactly the artefacts that change shaped are rewritten and the rows equal a fresh run's; or gives two
labels that a lossy folder mapping would merge (case 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nrp.distributed import DistributedContext
from nrp.errors import InputError
from nrp.eval.artefacts import StaleArtefactError, folder_name
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config, load_eval_config
from nrp.eval.protocol import run_classification
from nrp.fingerprint import code_digest
from nrp.io.read import read_image

from .conftest import BoundaryClassifier


def experiment(boundary_images, out: Path, **changes) -> EvalConfig:
    folder, labels = boundary_images
    values = dict(images=str(folder), labels=str(labels), image_size=16, out=str(out), sources=["edge"],
                  attacks=["fgsm", {"name": "i_fgsm", "steps": 2, "label": "I-FGSM"}], eps=[16],
                  defenses=["none", {"name": "jpeg", "quality": 75, "label": "JPEG"}], targets=["edge"], batch_size=4)
    values.update(changes)
    config = EvalConfig(**values)
    check_config(config)
    return config


def run(config: EvalConfig) -> list[dict]:
    return run_classification(config, DistributedContext(), {"edge": BoundaryClassifier()}).rows


def snapshot(out: Path) -> dict[Path, tuple[int, int]]:
    """Every stored set image, manifest and prediction file, by (inode, mtime): atomic rewrites change both."""
    return {p.relative_to(out): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.rglob("*") if p.is_file() and p.parts[len(out.parts)] in ("sets", "predictions")}


def rewritten(before: dict, after: dict) -> set[Path]:
    return {path for path in after if before.get(path) != after[path]}


def cell(rows: list[dict], attack: str, defense: str) -> dict:
    return next(r for r in rows if r["attack"] == attack and r["defense"] == defense)


def test_more_i_fgsm_steps_recompute_that_set_and_its_predictions_only(boundary_images, tmp_path):
    out = tmp_path / "run"
    first = run(experiment(boundary_images, out))
    assert cell(first, "I-FGSM", "none")["fooling_rate"] == 0.0  # 2 steps of 1.6/255 cannot reach the boundary
    before = snapshot(out)
    changed = experiment(boundary_images, out, attacks=["fgsm", {"name": "i_fgsm", "steps": 10, "label": "I-FGSM"}])
    rows = run(changed)
    assert cell(rows, "I-FGSM", "none")["fooling_rate"] == 1.0  # 10 steps spend the whole budget
    expected = {path for path in snapshot(out) if "I-FGSM" in path.parts}
    assert expected and rewritten(before, snapshot(out)) == expected
    assert rows == run(experiment(boundary_images, tmp_path / "fresh", attacks=changed.attacks))


def test_another_jpeg_quality_recomputes_that_defenses_predictions_only(boundary_images, tmp_path):
    out = tmp_path / "run"
    run(experiment(boundary_images, out))
    before = snapshot(out)
    defenses = ["none", {"name": "jpeg", "quality": 5, "label": "JPEG"}]
    rows = run(experiment(boundary_images, out, defenses=defenses))
    expected = {path for path in snapshot(out) if path.parts[0] == "predictions" and "JPEG" in path.parts}
    assert len(expected) == 3 and rewritten(before, snapshot(out)) == expected  # clean, FGSM, I-FGSM
    assert rows == run(experiment(boundary_images, tmp_path / "fresh", defenses=defenses))


def test_another_image_size_recomputes_every_set_at_that_size(boundary_images, tmp_path):
    out = tmp_path / "run"
    run(experiment(boundary_images, out))
    before = snapshot(out)
    rows = run(experiment(boundary_images, out, image_size=20))
    after = snapshot(out)
    assert rewritten(before, after) == set(after)
    assert {tuple(read_image(out / p).shape) for p in after if p.suffix == ".png"} == {(3, 20, 20)}
    assert rows == run(experiment(boundary_images, tmp_path / "fresh", image_size=20))


def test_a_stale_set_is_refused_when_asked_and_nothing_is_touched(boundary_images, tmp_path):
    out = tmp_path / "run"
    run(experiment(boundary_images, out))
    before = snapshot(out)
    changed = experiment(boundary_images, out, attacks=["fgsm", {"name": "i_fgsm", "steps": 10, "label": "I-FGSM"}],
                         stale="refuse")
    with pytest.raises(StaleArtefactError, match=r"set edge/I-FGSM/16 was stored under another configuration "
                                                 r"\(attack\.params\.steps: 2 -> 10"):
        run(changed)
    assert snapshot(out) == before


def test_a_stale_set_is_logged_with_what_changed(boundary_images, tmp_path, caplog):
    out = tmp_path / "run"
    run(experiment(boundary_images, out))
    run(experiment(boundary_images, out, attacks=["fgsm", {"name": "i_fgsm", "steps": 10, "label": "I-FGSM"}]))
    assert "recomputing set edge/I-FGSM/16: stored under another configuration (attack.params.steps: 2 -> 10)" in caplog.text


def test_attack_labels_a_lossy_mapping_merges_get_their_own_folders_and_rows(boundary_images, tmp_path):
    attacks = [{"name": "fgsm", "label": "FGSM a"}, {"name": "i_fgsm", "steps": 2, "label": "FGSM_a"}]
    rows = run(experiment(boundary_images, tmp_path / "run", attacks=attacks, defenses=["none"]))
    assert cell(rows, "FGSM a", "none")["fooling_rate"] == 1.0
    assert cell(rows, "FGSM_a", "none")["fooling_rate"] == 0.0
    assert {p.name for p in (tmp_path / "run" / "sets" / "edge").iterdir()} == {"FGSM%20a", "FGSM_a"}


def test_defense_labels_a_lossy_mapping_merges_get_their_own_predictions(boundary_images, tmp_path):
    defenses = [{"name": "bit_depth", "bits": 2, "label": "D 1"}, {"name": "none", "label": "D_1"}]
    rows = run(experiment(boundary_images, tmp_path / "run", attacks=["fgsm"], defenses=defenses))
    assert cell(rows, "fgsm", "D 1")["top1"] == 1.0  # two-bit depth undoes the attack
    assert cell(rows, "fgsm", "D_1")["top1"] == 0.0


@pytest.mark.parametrize("label", ["..", ".", "", "a/b", "a\\b"])
def test_labels_that_cannot_name_a_folder_are_refused_when_the_file_is_read(tmp_path, label):
    path = tmp_path / "experiment.yaml"
    path.write_text(f"images: x\nout: y\ntargets: [m]\nsources: [m]\nattacks: [{{name: fgsm, label: {label!r}}}]\n")
    with pytest.raises(InputError, match="label .* cannot name a folder"):
        load_eval_config(path, {})


def test_labels_that_differ_only_in_case_are_refused():
    with pytest.raises(InputError, match="differ only in case"):
        check_config(EvalConfig(images="x", out="y", targets=["m"], defenses=["none", {"name": "jpeg", "label": "JPEG"},
                                                                   {"name": "jpeg", "quality": 5, "label": "jpeg"}]))


def test_folder_names_are_injective_and_hold_no_separator():
    labels = ["FGSM a", "FGSM_a", "FGSM%20a", "a/b", "a_b", "..x", "D 1", "D_1", "ü", "u"]
    names = [folder_name(label) for label in labels]
    assert len(set(names)) == len(labels)
    assert all("/" not in name and "\\" not in name and name not in (".", "..") for name in names)


def test_a_change_of_nrps_own_code_recomputes_the_sets(boundary_images, tmp_path, monkeypatch, caplog):
    # A development checkout keeps its version number while its attacks change: the code digest tells them apart.
    out = tmp_path / "run"
    run(experiment(boundary_images, out))
    before = snapshot(out)
    run(experiment(boundary_images, out))
    assert snapshot(out) == before  # same code: every stored artefact reused
    monkeypatch.setattr("nrp.fingerprint.source_digest", lambda: "0" * 16)
    run(experiment(boundary_images, out))
    assert "stored under another configuration (numerics.nrp-source:" in caplog.text
    assert {path.parts[0] for path in rewritten(before, snapshot(out))} == {"sets", "predictions"}


def test_the_code_digest_follows_the_code_but_not_the_command_line(tmp_path):
    (tmp_path / "attacks").mkdir()
    (tmp_path / "cli").mkdir()
    (tmp_path / "attacks" / "fgsm.py").write_text("step = 1\n")
    (tmp_path / "cli" / "main.py").write_text("help = 'a'\n")
    first = code_digest(tmp_path)
    (tmp_path / "cli" / "main.py").write_text("help = 'b'\n")
    assert code_digest(tmp_path) == first
    (tmp_path / "attacks" / "fgsm.py").write_text("step = 2\n")
    assert code_digest(tmp_path) != first
    (tmp_path / "attacks" / "fgsm.py").write_text("step = 1\n")
    (tmp_path / "attacks" / "fgsm.py").rename(tmp_path / "attacks" / "pgd.py")
    assert code_digest(tmp_path) != first  # the path counts too
