"""The classification protocol on constructed cases whose metrics are known, and its resume."""

from __future__ import annotations

import pytest
import torch

from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.protocol import run_classification
from nrp.distributed import DistributedContext

from .conftest import LABELS, BoundaryClassifier


def config_for(grey_images, tmp_path, **changes) -> EvalConfig:
    folder, labels = grey_images
    values = dict(images=str(folder), labels=str(labels), image_size=32, out=str(tmp_path / "run"),
                  sources=["right"], attacks=["fgsm", {"name": "i_fgsm", "steps": 2, "label": "i_fgsm"}], eps=[16],
                  defenses=["none", {"name": "median", "window": 3}], targets=["right", "constant"], batch_size=3)
    values.update(changes)
    config = EvalConfig(**values)
    check_config(config)
    return config


def by_key(rows):
    return {(r["source"], r["attack"], r["defense"], r["target"]): r for r in rows}


def test_known_answers(grey_images, tmp_path, tiny_models):
    run = run_classification(config_for(grey_images, tmp_path), DistributedContext(), tiny_models)
    rows = by_key(run.rows)
    assert len(run.rows) == 3 * 2 * 2  # (clean, fgsm, i_fgsm) x 2 defenses x 2 targets
    share_of_class_0 = LABELS.count(0) / len(LABELS)
    for attack in ("fgsm", "i_fgsm"):
        for defense in ("none", "median(window=3)"):
            always_right = rows[("right", attack, defense, "right")]
            assert always_right["top1"] == always_right["top5"] == 1.0
            assert always_right["success_rate"] == always_right["fooling_rate"] == 0.0
            constant = rows[("right", attack, defense, "constant")]
            assert constant["top1"] == pytest.approx(share_of_class_0)
            assert constant["top5"] == 1.0  # classes 0-4 are its top five
            assert constant["success_rate"] == pytest.approx(1 - share_of_class_0)
            assert constant["fooling_rate"] == 0.0
            assert constant["clean_top1"] == pytest.approx(share_of_class_0)
    clean = rows[("clean", "clean", "none", "right")]
    assert clean["fooling_rate"] is None and clean["top1"] == 1.0


def test_adversarial_images_are_stored_in_the_ball_and_resume_regenerates_nothing(grey_images, tmp_path, tiny_models):
    config = config_for(grey_images, tmp_path)
    first = run_classification(config, DistributedContext(), tiny_models)
    from nrp.io.read import read_image
    stems = first.images.stems()
    for adversarial_set in first.sets:
        for clean_path, adv_path in zip(first.clean.paths(stems), adversarial_set.paths(stems)):
            clean, adversarial = read_image(clean_path), read_image(adv_path)
            assert (adversarial - clean).abs().max() <= 16 / 255 + 1e-6
            assert adversarial.shape == (3, 32, 32)
    stored = sorted(p for p in (tmp_path / "run").rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in stored}
    second = run_classification(config, DistributedContext(), tiny_models)
    assert second.rows == first.rows
    assert {p: p.stat().st_mtime_ns for p in stored} == stamps


def test_an_interrupted_set_resumes_to_the_same_images(grey_images, tmp_path, tiny_models):
    config = config_for(grey_images, tmp_path, attacks=[{"name": "pgd", "steps": 2}])
    first = run_classification(config, DistributedContext(), tiny_models)
    stems = first.images.stems()
    pgd = first.sets[0]
    originals = {p: p.read_bytes() for p in pgd.paths(stems)}
    # Simulate a kill in the middle of crafting: the manifest and the second batch's images are gone.
    (pgd.folder / "manifest.json").unlink()
    for path in pgd.paths(stems)[3:6]:
        path.unlink()
    kept = {p: p.stat().st_mtime_ns for p in pgd.paths(stems)[:3]}
    second = run_classification(config, DistributedContext(), tiny_models)
    assert {p: p.read_bytes() for p in pgd.paths(stems)} == originals
    assert {p: p.stat().st_mtime_ns for p in pgd.paths(stems)[:3]} == kept
    assert second.rows == first.rows


def test_labels_free_run_reports_only_fooling_rates(grey_images, tmp_path, tiny_models):
    config = config_for(grey_images, tmp_path, labels=None)
    rows = by_key(run_classification(config, DistributedContext(), tiny_models).rows)
    row = rows[("right", "fgsm", "none", "right")]
    assert row["top1"] is None and row["success_rate"] is None
    assert row["fooling_rate"] == 0.0


def test_ensemble_source_and_label_free_ssp_are_crafted(grey_images, tmp_path, tiny_models):
    torch.manual_seed(0)
    tiny_models = dict(tiny_models, **{"tiny:conv": torch.nn.Conv2d(3, 4, 3)})
    attacks = ["fgsm", {"name": "ssp", "backbone": "tiny", "layer": "conv", "steps": 3, "label": "ssp"}]
    config = config_for(grey_images, tmp_path, sources=["right+constant"], attacks=attacks)
    run = run_classification(config, DistributedContext(), tiny_models)
    assert {(r["source"], r["attack"]) for r in run.rows} == {("clean", "clean"), ("right+constant", "fgsm"), ("tiny:conv", "ssp")}
    from nrp.io.read import read_image
    ssp_set = next(s for s in run.sets if s.attack.name == "ssp")
    stems = run.images.stems()
    differences = [read_image(a) - read_image(c) for a, c in zip(ssp_set.paths(stems), run.clean.paths(stems))]
    assert max(float(d.abs().max()) for d in differences) == pytest.approx(16 / 255, abs=1e-6)


def test_precomputed_adversarial_images_are_read_by_name_and_clipped_into_the_ball(grey_images, tmp_path, tiny_models):
    from PIL import Image

    from nrp.io.read import read_image
    folder, _ = grey_images
    made_elsewhere = tmp_path / "cda"
    made_elsewhere.mkdir()
    for path in folder.iterdir():
        Image.new("RGB", (40, 48), (255, 255, 255)).save(made_elsewhere / f"{path.stem}.jpg")
    attack = {"name": "precomputed", "folder": str(made_elsewhere), "label": "cda"}
    run = run_classification(config_for(grey_images, tmp_path, attacks=[attack]), DistributedContext(), tiny_models)
    stems = run.images.stems()
    for adversarial, clean in zip(run.sets[0].paths(stems), run.clean.paths(stems)):
        expected = (read_image(clean) + 16 / 255).clamp(max=1.0)
        assert torch.allclose(read_image(adversarial), expected, atol=0.5 / 255)
    assert {r["source"] for r in run.rows} == {"clean", "precomputed"}


def test_an_unknown_model_fails_before_anything_is_stored(grey_images, tmp_path, tiny_models):
    from nrp.errors import InputError
    with pytest.raises(InputError, match="unknown model 'no_such_model'"):
        run_classification(config_for(grey_images, tmp_path, targets=["right", "no_such_model"]), DistributedContext(), tiny_models)
    assert not (tmp_path / "run").exists()


def test_a_white_box_attack_flips_every_image_and_a_defense_that_undoes_it_restores_clean_accuracy(boundary_images, tmp_path):
    # Every image sits 8/255 from the boundary of BoundaryClassifier, so FGSM at eps 16 provably flips all of them,
    # and two-bit depth reduction maps each attacked image back onto its clean pixels.
    folder, labels = boundary_images
    config = EvalConfig(images=str(folder), labels=str(labels), image_size=16, out=str(tmp_path / "run"), sources=["edge"],
                        attacks=["fgsm"], eps=[16], defenses=["none", {"name": "bit_depth", "bits": 2, "label": "2-bit"}],
                        targets=["edge"], batch_size=4)
    check_config(config)
    run = run_classification(config, DistributedContext(), {"edge": BoundaryClassifier()})
    rows = {(r["attack"], r["defense"]): r for r in run.rows}
    undefended, defended = rows[("fgsm", "none")], rows[("fgsm", "2-bit")]
    assert rows[("clean", "none")]["top1"] == 1.0
    assert undefended["success_rate"] == undefended["fooling_rate"] == 1.0 and undefended["top1"] == 0.0
    assert defended["top1"] == defended["clean_top1"] == 1.0 and defended["fooling_rate"] == 0.0
    from nrp.io.read import read_image
    stems = run.images.stems()
    for clean_path, adversarial_path in zip(run.clean.paths(stems), run.sets[0].paths(stems)):
        assert torch.equal((read_image(adversarial_path) * 255).round() - (read_image(clean_path) * 255).round(),
                           torch.full((3, 16, 16), 16.0))  # the whole budget, every pixel, towards the boundary
