"""The agreement-labelled evaluation set, on fake gcompris bundles and stub classifiers with known answers."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nrp.zoo
from nrp.cli.main import main
from nrp.errors import InputError
from nrp.offline import agreement, prepare_offline, recipe
from nrp.offline.agreement import BundleImage, carve_webp, select_agreement, zoo_classify


def picture(red: float, blue: float = 0.1, size=(240, 320), seed: int = 0) -> Image.Image:
    """A flat colour (0-1 channels) with a faint smooth pattern, ``size`` = (height, width)."""
    coarse = np.random.default_rng(seed).uniform(-8, 8, (4, 4)).astype(np.float32)
    pattern = np.asarray(Image.fromarray(coarse, mode="F").resize((size[1], size[0]), Image.BICUBIC))
    base = np.array([red, 0.2, blue], dtype=np.float32) * 255
    return Image.fromarray(np.clip(base + pattern[..., None], 0, 255).round().astype(np.uint8))


def webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def stub_classifiers() -> dict[str, torch.nn.Module]:
    """The three labelling "models", whose top-1 class is 10 x the mean red; the third says 999 for images that
    are mostly blue."""
    class Stub(torch.nn.Module):
        def __init__(self, blue_class: int | None) -> None:
            super().__init__()
            self.blue_class = blue_class
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape == (1, 3, 224, 224) and 0 <= x.min() and x.max() <= 1  # fed as nrp demo feeds them
            self.calls += 1
            label = int(x[:, 0].mean() * 10)
            if self.blue_class is not None and x[:, 2].mean() > 0.5:
                label = self.blue_class
            return torch.nn.functional.one_hot(torch.tensor([label]), 1000).float()

    return {"efficientnet-lite0": Stub(None), "efficientnet-lite1": Stub(None), "mobilenet_v2": Stub(999)}


# name -> picture: the known answer of the selection is "big_copy" (class 3) and "kept" (class 1).
PICTURES = {
    "small_copy": picture(0.35, seed=1),                     # same picture as big_copy, smaller: a duplicate
    "big_copy": picture(0.35, size=(300, 400), seed=1),      # kept, class 3
    "too_small": picture(0.55, size=(150, 300), seed=2),     # short side 150 < 200
    "disagreed": picture(0.75, blue=0.9, size=(256, 256), seed=3),  # mobilenet_v2 says 999
    "in_training": picture(0.95, size=(256, 256), seed=4),   # also a training photo
    "painting": picture(0.65, size=(256, 256), seed=5),      # its sha256 is listed as not a photo
    "kept": picture(0.15, size=(220, 260), seed=6),          # kept, class 1
}


def fake_bundle(images: list[bytes]) -> tuple[bytes, list[int]]:
    """Junk, a false RIFF start and a RIFF WAVE chunk between the images, a truncated WEBP at the end."""
    data, offsets = bytearray(b"qres\x00\x00\x00\x03junkRIFF"), []
    for image in images:
        data += b"\x00\x07RIFF\x10\x00\x00\x00WAVEfmt \x00\x00\x00\x00\x00\x00\x00\x00"
        offsets.append(len(data))
        data += image
    data += b"RIFF\xff\xff\x00\x00WEBPVP8L"  # claims 65535 bytes; the file ends first
    return bytes(data), offsets


@pytest.fixture
def rcc(tmp_path: Path) -> Path:
    """categorization.rcc holding PICTURES in order, and babyshapes.rcc (drawings: not read) with one more."""
    folder = tmp_path / "rcc"
    folder.mkdir()
    data, _ = fake_bundle([webp(image) for image in PICTURES.values()])
    (folder / "categorization.rcc").write_bytes(data)
    (folder / "babyshapes.rcc").write_bytes(fake_bundle([webp(picture(0.45, seed=9))])[0])
    return folder


@pytest.fixture
def stubs(monkeypatch) -> dict[str, torch.nn.Module]:
    """The zoo's create_model gives the stub classifiers (each counts its calls); any other name fails."""
    made = stub_classifiers()
    monkeypatch.setattr(nrp.zoo, "create_model", lambda name: made[name])
    return made


def test_the_labelling_networks_are_the_demos_non_target_ones_never_the_black_box_target():
    """Under the disjoint protocol the target must not choose or label the photos it is scored on."""
    from nrp.offline.demo import BLACK_BOX_TARGET, PURIFIER_NETWORK, SOURCES, TARGETS
    assert BLACK_BOX_TARGET not in agreement.AGREEMENT_MODELS
    single_sources = {source for source in SOURCES if "+" not in source}
    assert set(agreement.AGREEMENT_MODELS) == {PURIFIER_NETWORK, *single_sources}
    assert set(agreement.AGREEMENT_MODELS) <= set(TARGETS)  # each is still scored, as a non-target model


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch, rcc: Path, stubs) -> Path:
    """foolbox with 2 photos; scikit-image with "in_training" and one validation photo; the painting marked."""
    foolbox = tmp_path / "site" / "foolbox"
    (foolbox / "data").mkdir(parents=True)
    for index, label in enumerate((281, 9)):
        picture(0.05 + 0.4 * index, blue=0.5, seed=20 + index).save(foolbox / "data" / f"imagenet_{index:02d}_{label}.jpg")
    monkeypatch.setattr(recipe, "_package_folder", lambda name: foolbox if name == "foolbox" else None)
    training_copy = np.asarray(PICTURES["in_training"].resize((128, 128), Image.BILINEAR))
    validation = np.asarray(picture(0.5, seed=30))
    monkeypatch.setattr(recipe, "_skimage_arrays", lambda: [("astronaut", training_copy), ("coffee", validation)])
    monkeypatch.setattr(recipe, "_sklearn_arrays", lambda: [])
    monkeypatch.setattr(agreement, "NOT_PHOTOS", frozenset({BundleImage("x", 0, webp(PICTURES["painting"])).sha256}))
    monkeypatch.setattr(recipe, "GCOMPRIS_RCC", rcc)
    return tmp_path / "no-opencv"


def test_carving_finds_every_webp_between_junk_and_skips_false_and_truncated_chunks():
    images = [webp(picture(0.3, seed=1, size=(20, 30))), webp(picture(0.6, seed=2, size=(16, 16)))]
    data, offsets = fake_bundle(images)
    carved = carve_webp(data)
    assert [offset for offset, _ in carved] == offsets
    assert [chunk for _, chunk in carved] == images
    decoded = BundleImage("categorization.rcc", offsets[0], carved[0][1]).decode()
    assert decoded.size == (30, 20) and decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(picture(0.3, seed=1, size=(20, 30))))


def test_selection_keeps_large_unique_agreed_photos_with_the_agreed_label(tmp_path, rcc, monkeypatch):
    painting = BundleImage("x", 0, webp(PICTURES["painting"])).sha256
    monkeypatch.setattr(agreement, "NOT_PHOTOS", frozenset({painting}))
    reference = tmp_path / "training.png"
    PICTURES["in_training"].resize((128, 128), Image.BILINEAR).save(reference)
    candidates = agreement.bundle_images(rcc)
    assert {c.bundle for c in candidates} == {"categorization.rcc"}  # babyshapes holds drawings: not read
    assert len(candidates) == len(PICTURES)
    stubs = stub_classifiers()
    selected = select_agreement(candidates, [reference], zoo_classify(stubs))
    by_offset = {c.offset: name for c, name in zip(candidates, PICTURES)}
    assert [by_offset[s.source.offset] for s in selected] == ["big_copy", "kept"]  # in order of offset
    assert [s.label for s in selected] == [3, 1]
    assert selected[0].predictions == dict.fromkeys(stubs, 3)
    assert selected[0].image.size == (400, 300)
    # Only the 3 images that passed the size, duplicate, overlap and painting filters were classified.
    assert [stub.calls for stub in stubs.values()] == [3, 3, 3]


def test_the_cap_keeps_the_first_agreed_photos_by_webp_sha256(tmp_path, rcc):
    candidates = agreement.bundle_images(rcc)
    everything = select_agreement(candidates, [], zoo_classify(stub_classifiers()))
    assert len(everything) == 4  # big_copy, in_training, painting, kept (nothing marked, no references)
    first_two = sorted(everything, key=lambda s: s.source.sha256)[:2]
    capped = select_agreement(candidates, [], zoo_classify(stub_classifiers()), cap=2)
    assert [s.source.offset for s in capped] == sorted(s.source.offset for s in first_two)
    assert len(select_agreement(candidates, [], zoo_classify(stub_classifiers()), min_side=250)) == 3  # not "kept" (220)
    with pytest.raises(InputError, match="cap and min_side"):
        select_agreement(candidates, [], zoo_classify(stub_classifiers()), cap=0)


def test_recipe_writes_pngs_labels_and_manifest_and_keeps_them_when_the_demo_lays_out_foolbox(tmp_path, fake_packages, rcc):
    layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True, gcompris_rcc=rcc)
    data, offsets = fake_bundle([webp(image) for image in PICTURES.values()])
    names = {name: f"categorization_{offset}.png" for name, offset in zip(PICTURES, offsets)}
    assert sorted(p.name for p in layout.agreement_images.iterdir()) == sorted([names["big_copy"], names["kept"]])
    with layout.agreement_labels.open() as handle:
        assert list(csv.reader(handle)) == [["filename", "label"], [names["big_copy"], "3"], [names["kept"], "1"]]
    np.testing.assert_array_equal(np.asarray(Image.open(layout.agreement_images / names["kept"])), np.asarray(PICTURES["kept"]))
    records = {r["file"]: r for r in json.loads(layout.manifest.read_text())["files"]}
    entry = records[f"eval_agreement/gcompris/{names['big_copy']}"]
    assert entry["bundle"] == "categorization.rcc" and entry["offset"] == offsets[1] and entry["label"] == "3"
    assert entry["source_sha256"] == BundleImage("", 0, webp(PICTURES["big_copy"])).sha256
    assert entry["predictions"] == {"efficientnet-lite0": 3, "efficientnet-lite1": 3, "mobilenet_v2": 3}
    assert len(entry["sha256"]) == 64 and "skimage" in {r["source"] for r in records.values()}
    # `nrp demo` (foolbox) lays out the foolbox photos only: the manifest keeps the other records.
    prepare_offline(tmp_path / "cache", training=False)
    assert {r["file"]: r for r in json.loads(layout.manifest.read_text())["files"]} == records


def test_a_rerun_classifies_nothing_again_and_a_smaller_cap_removes_the_extra_png(tmp_path, fake_packages, stubs):
    layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True)  # default: recipe.GCOMPRIS_RCC
    assert [stub.calls for stub in stubs.values()] == [3, 3, 3]  # big_copy, disagreed, kept: the others are filtered
    prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True)
    assert [stub.calls for stub in stubs.values()] == [3, 3, 3]
    assert len(list(layout.agreement_images.iterdir())) == 2
    prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True, agreement_cap=1)
    prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True, agreement_cap=1)
    assert len(list(layout.agreement_images.iterdir())) == 1
    with layout.agreement_labels.open() as handle:
        assert len(list(csv.reader(handle))) == 2


def test_missing_package_skips_the_set_with_a_warning_naming_apt_get(tmp_path, fake_packages, caplog, capsys, monkeypatch):
    monkeypatch.setattr(recipe, "GCOMPRIS_RCC", tmp_path / "not-installed")
    with caplog.at_level(logging.WARNING, logger="nrp.offline.agreement"):
        layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True)
    assert "apt-get install --no-install-recommends gcompris-qt-data" in caplog.text
    assert not layout.agreement_labels.exists() and layout.eval_labels.is_file()
    assert main(["demo", "--eval-set", "agreement", "--cache", str(tmp_path / "cache"), "--quick",
                 "--out", str(tmp_path / "demo")]) != 0
    assert "apt-get install --no-install-recommends gcompris-qt-data" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_the_agreement_set_needs_the_training_photos(tmp_path, fake_packages):
    with pytest.raises(InputError, match="training photos"):
        prepare_offline(tmp_path / "cache", training=False, agreement=True)


def test_a_registry_training_photo_of_the_same_picture_keeps_the_photo_out_of_the_set(tmp_path, fake_packages, rcc):
    """The --training-photos (photos/train/<package>/) train the purifier: a set photo they show is dropped."""
    cache = tmp_path / "cache"
    copy = cache / "photos" / "train" / "some-package" / "kept.jpg"
    copy.parent.mkdir(parents=True)
    PICTURES["kept"].resize((200, 169), Image.BILINEAR).save(copy, quality=90)
    layout = prepare_offline(cache, opencv_data=fake_packages, agreement=True, gcompris_rcc=rcc)
    with layout.agreement_labels.open() as handle:
        assert [row[1] for row in csv.reader(handle)] == ["label", "3"]  # big_copy only: "kept" is a training photo


def test_a_set_labelled_by_other_networks_is_stale_and_the_demo_builds_it_again(tmp_path, fake_packages, rcc, monkeypatch):
    layout = prepare_offline(tmp_path / "cache", opencv_data=fake_packages, agreement=True, gcompris_rcc=rcc)
    assert recipe.agreement_set_is_current(layout)
    manifest = json.loads(layout.manifest.read_text())
    fresh = layout.manifest.read_text()
    for record in manifest["files"]:
        if "predictions" in record:  # as an earlier version labelled it: with the target, Lite2
            record["predictions"] = {"efficientnet-lite0": 3, "efficientnet-lite1": 3, "efficientnet-lite2": 3}
    layout.manifest.write_text(json.dumps(manifest))
    assert not recipe.agreement_set_is_current(layout)
    without = {"files": [r for r in manifest["files"] if not r["file"].startswith("eval_agreement/")]}
    layout.manifest.write_text(json.dumps(without))  # a manifest that lost the set's records
    assert not recipe.agreement_set_is_current(layout)
    # The demo relabels it before it runs anything (the run itself is stopped at once here).
    import nrp.cli.demo as demo_cli
    monkeypatch.setattr(recipe, "GCOMPRIS_RCC", rcc)
    monkeypatch.setattr(demo_cli, "prepare_offline",
                        lambda cache, **kwargs: prepare_offline(cache, opencv_data=fake_packages, **kwargs))
    monkeypatch.setattr(demo_cli, "mobilenet_v2_weights", lambda cache: (_ for _ in ()).throw(InputError("stop here")))
    assert main(["demo", "--eval-set", "agreement", "--cache", str(tmp_path / "cache"), "--quick",
                 "--out", str(tmp_path / "demo")]) != 0
    assert recipe.agreement_set_is_current(layout)
    assert json.loads(layout.manifest.read_text()) == json.loads(fresh)
