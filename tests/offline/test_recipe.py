"""The offline data recipe, on a fake set of installed packages: layout, labels, manifest, no overlap."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nrp.errors import InputError
from nrp.offline import check_no_overlap, prepare_offline, recipe


def photo(seed: int, size=(40, 48)) -> np.ndarray:
    """A smooth random colour image (like a photo, it survives JPEG nearly unchanged)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC))


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch) -> Path:
    """foolbox with 3 labelled photos, scikit-image/-learn with 2 photos each, an OpenCV folder with 2 photos + 1 logo."""
    foolbox = tmp_path / "site" / "foolbox"
    (foolbox / "data").mkdir(parents=True)
    for index, label in enumerate((281, 9, 966)):
        Image.fromarray(photo(index)).save(foolbox / "data" / f"imagenet_{index:02d}_{label}.jpg")
    Image.fromarray(photo(50)).save(foolbox / "data" / "cifar10_00_3.png")
    monkeypatch.setattr(recipe, "_package_folder", lambda name: foolbox if name == "foolbox" else None)
    monkeypatch.setattr(recipe, "_skimage_arrays", lambda: [("astronaut", photo(10)), ("coffee", photo(11))])
    monkeypatch.setattr(recipe, "_sklearn_arrays", lambda: [("china", photo(12)), ("flower", photo(13))])
    opencv = tmp_path / "opencv"
    opencv.mkdir()
    for name, seed in (("baboon.jpg", 20), ("fruits.jpg", 21), ("opencv-logo.png", 22)):
        Image.fromarray(photo(seed)).save(opencv / name)
    return opencv


def test_layout_labels_and_manifest(tmp_path, fake_packages):
    layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages)
    assert sorted(p.name for p in layout.eval_images.iterdir()) == ["imagenet_00_281.jpg", "imagenet_01_9.jpg", "imagenet_02_966.jpg"]
    with layout.eval_labels.open() as handle:
        assert list(csv.reader(handle)) == [["filename", "label"], ["imagenet_00_281.jpg", "281"],
                                            ["imagenet_01_9.jpg", "9"], ["imagenet_02_966.jpg", "966"]]
    train = sorted(str(p.relative_to(layout.train_images)) for p in layout.train_images.rglob("*") if p.is_file())
    assert train == ["opencv/fruits.jpg", "skimage/astronaut.png", "sklearn/china.png"]
    held_out = sorted(str(p.relative_to(layout.val_images)) for p in layout.val_images.rglob("*") if p.is_file())
    assert held_out == ["opencv/baboon.jpg", "skimage/coffee.png", "sklearn/flower.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(layout.train_images / "skimage" / "astronaut.png")), photo(10))
    manifest = json.loads(layout.manifest.read_text())["files"]
    assert len(manifest) == 3 + 6
    assert all(len(entry["sha256"]) == 64 for entry in manifest)


def test_rerun_keeps_files_and_gives_the_same_manifest(tmp_path, fake_packages):
    layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages)
    first = layout.manifest.read_text()
    stamp = (layout.train_images / "opencv" / "fruits.jpg").stat().st_mtime_ns
    prepare_offline(tmp_path / "cache", opencv_data=fake_packages)
    assert layout.manifest.read_text() == first
    assert (layout.train_images / "opencv" / "fruits.jpg").stat().st_mtime_ns == stamp


def test_a_training_photo_equal_to_an_evaluation_photo_aborts(tmp_path, fake_packages, monkeypatch):
    monkeypatch.setattr(recipe, "_sklearn_arrays", lambda: [("china", photo(1))])  # foolbox's imagenet_01
    with pytest.raises(InputError, match="china.png is the evaluation photo .*imagenet_01_9.jpg"):
        prepare_offline(tmp_path / "cache", opencv_data=fake_packages)


def test_overlap_check_catches_a_resized_reencoded_copy_but_not_a_different_photo(tmp_path):
    original = tmp_path / "eval.png"
    Image.fromarray(photo(0, size=(64, 64))).save(original)
    copy = tmp_path / "copy.jpg"
    Image.fromarray(photo(0, size=(64, 64))).resize((96, 96)).save(copy, quality=90)
    other = tmp_path / "other.png"
    Image.fromarray(photo(1, size=(64, 64))).save(other)
    check_no_overlap([original], [other])
    with pytest.raises(InputError, match="copy.jpg"):
        check_no_overlap([original], [other, copy])


def test_missing_foolbox_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "_package_folder", lambda name: None)
    with pytest.raises(InputError, match="pip install --no-deps foolbox"):
        prepare_offline(tmp_path / "cache")
