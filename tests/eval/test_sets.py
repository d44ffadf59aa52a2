"""The one set store of both protocols (nrp.eval.sets): layout, seeded batches, resume, fingerprints, and the
precomputed reader (nrp.eval.crafting), on the classification and the cross-task protocol alike."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nrp.defenses import create_defense
from nrp.distributed import DistributedContext
from nrp.errors import InputError
from nrp.eval.artefacts import StaleArtefactError
from nrp.eval.components import Component
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.crafting import read_precomputed
from nrp.eval.cross_task import run_cross_task
from nrp.eval.protocol import run_classification
from nrp.eval.sets import ImageSet, clean_set, plan_sets, store_set

from .conftest import BoundaryClassifier

STEMS = ["a", "b", "c", "d", "e"]
BATCHINGS = [2, None]  # the classification protocol's batches, the cross-task protocol's one image at a time


def a_set(root: Path, **record) -> ImageSet:
    attack = Component("pgd", {"steps": 2}, "PGD")
    planned = plan_sets(root, [attack], [16], ["m"])[0]
    return ImageSet(planned.source, planned.attack, planned.eps, root, planned.relative, {"kind": "test", "steps": 2, **record})


class Maker:
    """A batch maker whose images are the batch generator's uniform draws; records every call."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self):
        self.calls.append("build")

        def make(positions: range, generator: torch.Generator) -> torch.Tensor:
            self.calls.append(tuple(positions))
            return torch.rand(len(positions), 3, 4, 5, generator=generator)

        return make


def store(image_set: ImageSet, maker: Maker, batch_size: int | None, stems=STEMS, **options) -> None:
    store_set(image_set, stems, maker, seed=0, batch_size=batch_size, **options)


def files(image_set: ImageSet) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(image_set.folder.iterdir())}


def test_the_layout_of_both_protocols():
    ssp = Component("ssp", {"backbone": "vgg16", "layer": "conv3_3"}, "SSP a")
    fgsm = Component("fgsm", {}, "FGSM")
    classification = plan_sets(Path("run"), [fgsm, ssp], [8, 16], ["inc_v3", "a+b"])
    assert [(s.key, str(s.folder)) for s in classification] == [
        ("inc_v3/FGSM/8", "run/sets/inc_v3/FGSM/eps8"), ("a+b/FGSM/8", "run/sets/a%2Bb/FGSM/eps8"),
        ("inc_v3/FGSM/16", "run/sets/inc_v3/FGSM/eps16"), ("a+b/FGSM/16", "run/sets/a%2Bb/FGSM/eps16"),
        ("vgg16:conv3_3/SSP a/8", "run/sets/vgg16%3Aconv3_3/SSP%20a/eps8"),
        ("vgg16:conv3_3/SSP a/16", "run/sets/vgg16%3Aconv3_3/SSP%20a/eps16")]
    cross = plan_sets(Path("run/cross_task"), [ssp], [16.0])
    assert [(s.key, str(s.folder), str(s.relative)) for s in cross] == [
        ("cross_task/SSP a/16", "run/cross_task/sets/SSP%20a/eps16", "SSP%20a/eps16")]
    assert clean_set(Path("run")).paths(["x/y"]) == [Path("run/sets/clean/x/y.png")]
    in_place = clean_set(Path("run/cross_task"), "cross_task", {"y": Path("photos/y.jpg")})
    assert (in_place.key, in_place.paths(["y"])) == ("cross_task/clean/0", [Path("photos/y.jpg")])


@pytest.mark.parametrize("batch_size", BATCHINGS)
def test_an_interrupted_set_makes_only_its_missing_batches_and_the_same_images(tmp_path, batch_size):
    image_set = a_set(tmp_path)
    store(image_set, Maker(), batch_size)
    original = files(image_set)
    assert set(original) == {"fingerprint.json", "manifest.json", *(f"{s}.png" for s in STEMS)}
    # A kill during the second batch: no manifest, the images of c and d lost.
    for name in ("manifest.json", "c.png", "d.png"):
        (image_set.folder / name).unlink()
    maker = Maker()
    store(image_set, maker, batch_size)
    assert maker.calls == (["build", (2, 3)] if batch_size else ["build", (2,), (3,)])
    again = files(image_set)
    assert {name: value[2] for name, value in again.items() if name != "manifest.json"} == \
           {name: value[2] for name, value in original.items() if name != "manifest.json"}
    assert all(again[f"{s}.png"] == original[f"{s}.png"] for s in "abe")  # kept files are not rewritten


def test_a_set_notes_the_thread_counts_that_made_it_and_warns_when_a_resume_mixes_two(tmp_path, caplog):
    # Classifier gradients round differently at another thread count (docs/evaluation.md), so the set's files
    # say which counts made its images; the record leaves them out, so nothing is recrafted for them.
    image_set = a_set(tmp_path)
    threads = torch.get_num_threads()
    try:
        store(image_set, Maker(), 2)
        made = {name: json.loads((image_set.folder / name).read_text()) for name in ("fingerprint.json", "manifest.json")}
        assert made["fingerprint.json"]["threads"] == made["manifest.json"]["threads"] == [threads]
        for name in ("manifest.json", "c.png", "d.png"):  # interrupted, then resumed at another count
            (image_set.folder / name).unlink()
        torch.set_num_threads(threads + 1)
        maker = Maker()
        with caplog.at_level(logging.WARNING):
            store(image_set, maker, 2)
    finally:
        torch.set_num_threads(threads)
    assert maker.calls == ["build", (2, 3)]  # the stored images are kept
    assert (f"resuming set m/PGD/16 at {threads + 1} CPU threads; its stored images were made at {threads}"
            in caplog.text)
    manifest = json.loads((image_set.folder / "manifest.json").read_text())
    assert manifest["threads"] == [threads, threads + 1] and manifest["images"] == len(STEMS)
    caplog.clear()
    for name in ("manifest.json", "e.png"):  # a third leg at a count already noted: nothing to say
        (image_set.folder / name).unlink()
    with caplog.at_level(logging.WARNING):
        store(image_set, Maker(), 2)
    assert "CPU threads" not in caplog.text
    assert json.loads((image_set.folder / "manifest.json").read_text())["threads"] == [threads, threads + 1]


@pytest.mark.parametrize("batch_size", BATCHINGS)
def test_a_complete_set_builds_no_attack_and_touches_nothing(tmp_path, batch_size):
    image_set = a_set(tmp_path)
    store(image_set, Maker(), batch_size)
    before, maker = files(image_set), Maker()
    store(image_set, maker, batch_size)
    assert maker.calls == [] and files(image_set) == before


@pytest.mark.parametrize("batch_size", BATCHINGS)
def test_a_changed_record_recrafts_every_image_or_is_refused(tmp_path, batch_size, caplog):
    store(a_set(tmp_path), Maker(), batch_size)
    before = files(a_set(tmp_path))
    with pytest.raises(StaleArtefactError, match=r"set m/PGD/16 was stored under another configuration \(steps: 2 -> 3\)"):
        store(a_set(tmp_path, steps=3), Maker(), batch_size, policy="refuse")
    assert files(a_set(tmp_path)) == before
    maker = Maker()
    with caplog.at_level(logging.WARNING):
        store(a_set(tmp_path, steps=3), maker, batch_size)
    assert "recomputing set m/PGD/16: stored under another configuration (steps: 2 -> 3)" in caplog.text
    assert maker.calls[0] == "build" and len(maker.calls) == 1 + (3 if batch_size else 5)
    after = files(a_set(tmp_path))
    assert all(after[f"{s}.png"][:2] != before[f"{s}.png"][:2] for s in STEMS)


def test_one_image_batches_draw_by_stem_so_a_subset_stores_the_same_image(tmp_path):
    store(a_set(tmp_path / "all"), Maker(), None)
    store(a_set(tmp_path / "one"), Maker(), None, stems=["c"])
    assert (tmp_path / "one/sets/m/PGD/eps16/c.png").read_bytes() == (tmp_path / "all/sets/m/PGD/eps16/c.png").read_bytes()


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), mode="L" if pixels.ndim == 2 else "RGB").save(path)


def read_uint8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """16x16 textured photos, label masks of class 0, and 'made elsewhere' images for eps 8 and 16."""
    rng = np.random.default_rng(0)
    for stem in ("p0", "p1", "p2"):
        pixels = rng.integers(40, 216, (16, 16, 3))
        write_png(tmp_path / "photos" / f"{stem}.png", pixels)
        write_png(tmp_path / "masks" / f"{stem}.png", np.zeros((16, 16)))
        for eps in (8, 16):
            write_png(tmp_path / f"elsewhere{eps}" / f"{stem}.png", np.clip(pixels + rng.integers(-60, 61, pixels.shape), 0, 255))
    return tmp_path


def test_precomputed_images_are_read_identically_by_both_protocols(photos, tmp_path):
    attack = {"name": "precomputed", "folder": str(photos / "elsewhere{eps}"), "label": "made elsewhere"}
    config = EvalConfig(images=str(photos / "photos"), image_size=16, out=str(tmp_path / "run"), attacks=[attack], eps=[8, 16],
                        targets=["edge"], batch_size=2, grid_images=0,
                        cross_task={"images": str(photos / "photos"), "masks": str(photos / "masks"), "num_classes": 2,
                                    "segmenters": ["seg"], "attacks": [attack]})
    check_config(config)
    run = run_classification(config, DistributedContext(), {"edge": BoundaryClassifier()})
    run_cross_task(config, {"none": nn.Identity()}, "cpu", models={"seg": nn.Conv2d(3, 2, 1)})
    for eps in (8, 16):
        for stem in ("p0", "p1", "p2"):
            classification = read_uint8(tmp_path / "run" / "sets" / "precomputed" / "made%20elsewhere" / f"eps{eps}" / f"{stem}.png")
            cross_task = read_uint8(tmp_path / "run" / "cross_task" / "sets" / "made%20elsewhere" / f"eps{eps}" / f"{stem}.png")
            clean = read_uint8(photos / "photos" / f"{stem}.png")
            np.testing.assert_array_equal(classification, cross_task)
            np.testing.assert_array_equal(cross_task, np.clip(read_uint8(photos / f"elsewhere{eps}" / f"{stem}.png"),
                                                              clean - eps, clean + eps))
    assert {s.key for s in run.sets} == {"precomputed/made elsewhere/8", "precomputed/made elsewhere/16"}


def test_a_precomputed_image_of_another_size_is_refused_where_images_keep_their_sizes(tmp_path):
    write_png(tmp_path / "x.png", np.zeros((8, 12, 3)))
    clean = torch.zeros(1, 3, 12, 8)
    with pytest.raises(InputError, match=r"x.png is \(8, 12\) \(H, W\) but its clean image is \(12, 8\)"):
        read_precomputed(tmp_path, ["x"], clean, 16 / 255)
    assert read_precomputed(tmp_path, ["x"], torch.zeros(1, 3, 4, 4), 16 / 255, size=4).shape == (1, 3, 4, 4)
    with pytest.raises(InputError, match="precomputed adversarial image for 'y' not found"):
        read_precomputed(tmp_path, ["y"], clean, 16 / 255)


class EdgeSegmenter(nn.Module):
    """Class 1 where a pixel's mean over channels exceeds 93/255, else class 0: flat grey 85/255 is class 0, and
    +16/255 puts every pixel in class 1; two-bit depth reduction maps 101/255 back to 85/255."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x.mean(dim=1, keepdim=True) - 93 / 255) * 1000
        return torch.cat([torch.zeros_like(score), score], dim=1)


def flat_task_data(root: Path) -> dict:
    """Flat grey (85) photos of two sizes, class-0 masks, white 'made elsewhere' images: the cross-task section."""
    for stem, size in (("q0", (12, 16)), ("q1", (16, 12))):
        write_png(root / "flat" / f"{stem}.png", np.full((*size, 3), 85))
        write_png(root / "flat_masks" / f"{stem}.png", np.zeros(size))
        write_png(root / "white16" / f"{stem}.png", np.full((*size, 3), 255))
    return {"images": str(root / "flat"), "masks": str(root / "flat_masks"), "num_classes": 2, "segmenters": ["edge"],
            "attacks": [{"name": "precomputed", "folder": str(root / "white{eps}"), "label": "white"},
                        {"name": "ssp", "steps": 2, "step_size": 0.01, "label": "SSP"}]}


def cross_task_experiment(out: Path, section: dict) -> EvalConfig:
    return EvalConfig(images="unused", out=str(out), targets=["unused"], eps=[16], seed=0, cross_task=section)


def features() -> nn.Module:
    torch.manual_seed(1)
    return nn.Conv2d(3, 4, 3)


def cross_rows(out: Path, section: dict) -> dict:
    defenses = {"none": nn.Identity(), "2-bit": create_defense("bit_depth", bits=2)}
    rows = run_cross_task(cross_task_experiment(out, section), defenses, "cpu",
                          models={"edge": EdgeSegmenter(), "vgg16:conv3_3": features()})
    return {(r["attack"], r["defense"], r["metric"]): r["value"] for r in rows}


def test_the_cross_task_scores_read_the_attacked_set_not_the_clean_one(tmp_path):
    # The attack moves every pixel across EdgeSegmenter's boundary; a scorer reading the clean images would give 1.
    rows = cross_rows(tmp_path / "run", flat_task_data(tmp_path))
    assert rows[("clean", "none", "pixel_accuracy")] == 1.0
    assert rows[("white", "none", "pixel_accuracy")] == 0.0
    assert rows[("white", "2-bit", "pixel_accuracy")] == 1.0  # the defense undoes the attack


def test_an_interrupted_cross_task_set_resumes_to_the_same_images(tmp_path):
    section = flat_task_data(tmp_path)
    first = cross_rows(tmp_path / "run", section)
    folder = tmp_path / "run" / "cross_task" / "sets" / "SSP" / "eps16"
    original = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    (folder / "manifest.json").unlink()
    (folder / "q1.png").unlink()
    kept = (folder / "q0.png").stat().st_mtime_ns
    assert cross_rows(tmp_path / "run", section) == first
    assert {p.name: p.read_bytes() for p in folder.glob("*.png")} == original
    assert (folder / "q0.png").stat().st_mtime_ns == kept and (folder / "manifest.json").is_file()


def test_a_changed_cross_task_attack_recrafts_that_set_only(tmp_path, caplog):
    section = flat_task_data(tmp_path)
    cross_rows(tmp_path / "run", section)
    sets = tmp_path / "run" / "cross_task" / "sets"
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sets.rglob("*.png")}
    section["attacks"][1]["steps"] = 3
    with caplog.at_level(logging.WARNING):
        cross_rows(tmp_path / "run", section)
    assert "recomputing set cross_task/SSP/16: stored under another configuration (attack.params.steps: 2 -> 3)" in caplog.text
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sets.rglob("*.png")}
    assert {p.relative_to(sets).parts[0] for p in after if after[p] != before[p]} == {"SSP"}
