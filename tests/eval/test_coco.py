"""COCO annotation and mask-folder datasets of the cross-task protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.errors import InputError
from nrp.eval.coco import (
    TORCHVISION_COCO_LABELS,
    CocoDataset,
    MaskFolderDataset,
    category_mapping,
    load_coco,
    read_mask,
)

# pycocotools' mask decoding trips a NumPy 2 deprecation warning of its own.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# A few official COCO category ids (instances_val2017.json); ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 do not exist.
OFFICIAL_IDS = {1: "person", 13: "stop sign", 27: "backpack", 44: "bottle", 62: "chair", 67: "dining table", 72: "tv", 90: "toothbrush"}


def _write_coco(folder: Path, sizes: dict[int, tuple[int, int]], annotations: list[dict], categories: list[dict]) -> Path:
    """Write ``images/<id>.png`` for each image id (height, width) and ``instances.json``; return the JSON path."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images = []
    for image_id, (height, width) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / "images" / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": height, "width": width})
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


@pytest.fixture
def coco_files(tmp_path: Path) -> Path:
    annotations = [
        # A polygon square 4 x 4 at (2, 2): no area, no iscrowd, to be filled in.
        {"id": 1, "image_id": 7, "category_id": 1, "bbox": [2, 2, 4, 4], "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
        {"id": 2, "image_id": 3, "category_id": 3, "bbox": [0, 0, 5, 2]},
    ]
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    return _write_coco(tmp_path, {7: (8, 10), 3: (8, 10), 5: (12, 9)}, annotations, categories)


def test_torchvision_labels_are_the_official_coco_category_ids():
    assert len(TORCHVISION_COCO_LABELS) == 91 and TORCHVISION_COCO_LABELS[0] == "__background__"
    for category_id, name in OFFICIAL_IDS.items():
        assert TORCHVISION_COCO_LABELS[category_id] == name
    skipped = [i for i, name in enumerate(TORCHVISION_COCO_LABELS) if name == "N/A"]
    assert skipped == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]


def test_dataset_iterates_ids_in_order_with_their_files(coco_files: Path):
    data = CocoDataset(coco_files, coco_files.parent / "images")
    assert [(i, p.name) for i, p in data] == [(3, "3.png"), (5, "5.png"), (7, "7.png")]
    assert len(data) == 3
    subset = CocoDataset(coco_files, coco_files.parent / "images", image_ids=[7, 3])
    assert subset.image_ids == [3, 7]


def test_load_coco_fills_iscrowd_and_area_from_the_mask_or_box(coco_files: Path):
    coco = load_coco(coco_files)
    square, box = coco.anns[1], coco.anns[2]
    assert square["iscrowd"] == 0 and box["iscrowd"] == 0
    assert square["area"] == coco.annToMask(square).sum()  # the polygon's rasterised area, 16 pixels
    assert square["area"] == pytest.approx(16, abs=4)
    assert box["area"] == 10.0


def test_batches_decode_images_in_unit_range_grouped_by_size(coco_files: Path):
    data = CocoDataset(coco_files, coco_files.parent / "images")
    batches = list(data.batches(batch_size=4))
    # 3 (8x10), then 5 (12x9) breaks the run, then 7 (8x10).
    assert [ids for ids, _ in batches] == [[3], [5], [7]]
    for _, images in batches:
        assert images.dtype == torch.float32 and images.min() >= 0 and images.max() <= 1
    assert batches[1][1].shape == (1, 3, 12, 9)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda path: path.parent.joinpath("images", "5.png").unlink(), "missing"),
        (lambda path: path.write_text("{not json"), "not valid JSON"),
        (lambda path: path.write_text(json.dumps({"images": []})), "not a COCO instances file"),
        (lambda path: path.write_text(json.dumps({"images": [], "categories": [], "annotations": [{"id": 1}]})), "lacks"),
    ],
)
def test_dataset_refuses_bad_inputs_in_one_line(coco_files: Path, change, message):
    change(coco_files)
    with pytest.raises(InputError, match=message) as caught:
        CocoDataset(coco_files, coco_files.parent / "images")
    assert "\n" not in str(caught.value)


def test_unknown_image_id_is_refused(coco_files: Path):
    with pytest.raises(InputError, match="image id 4 is not in"):
        CocoDataset(coco_files, coco_files.parent / "images", image_ids=[3, 4])


def test_category_mapping_matches_names_not_ids(tmp_path: Path):
    # A dataset numbering its own categories 1..4, with VOC spellings and underscores.
    names = ["aeroplane", "motorbike", "dining_table", "TV monitor"]
    path = _write_coco(tmp_path, {1: (4, 4)}, [], [{"id": i + 1, "name": n} for i, n in enumerate(names)])
    mapping = category_mapping(load_coco(path))
    # torchvision labels: airplane 5, motorcycle 4, dining table 67, tv 72.
    assert mapping == {5: 1, 4: 2, 67: 3, 72: 4}


def test_category_mapping_is_the_identity_on_official_coco_categories(tmp_path: Path):
    categories = [{"id": i, "name": n} for i, n in enumerate(TORCHVISION_COCO_LABELS) if i and n != "N/A"]
    mapping = category_mapping(load_coco(_write_coco(tmp_path, {1: (4, 4)}, [], categories)))
    assert len(mapping) == 80 and all(label == category for label, category in mapping.items())


def test_category_mapping_never_maps_placeholder_labels(tmp_path: Path):
    path = _write_coco(tmp_path, {1: (4, 4)}, [], [{"id": 12, "name": "N/A"}, {"id": 0, "name": "__background__"},
                                                   {"id": 1, "name": "person"}])
    assert category_mapping(load_coco(path)) == {1: 1}


def test_category_mapping_without_shared_names_raises(tmp_path: Path):
    path = _write_coco(tmp_path, {1: (4, 4)}, [], [{"id": 1, "name": "nucleus"}])
    with pytest.raises(InputError, match="no category"):
        category_mapping(load_coco(path))


def _palette_png(path: Path, labels: np.ndarray) -> Path:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([value for i in range(256) for value in (i, 255 - i, (7 * i) % 256)])
    image.save(path)
    return path


def test_read_mask_gives_palette_indices_not_colours(tmp_path: Path):
    labels = np.array([[0, 1, 255], [20, 3, 0]])
    assert torch.equal(read_mask(_palette_png(tmp_path / "m.png", labels)), torch.from_numpy(labels))
    Image.fromarray(labels.astype(np.uint8), mode="L").save(tmp_path / "g.png")
    assert torch.equal(read_mask(tmp_path / "g.png"), torch.from_numpy(labels))


def test_read_mask_refuses_colour_masks(tmp_path: Path):
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="RGB image"):
        read_mask(tmp_path / "rgb.png")


@pytest.fixture
def mask_folders(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    for stem in ("b", "a", "c", "unlabelled"):
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / "JPEGImages" / f"{stem}.jpg")
    for stem in ("b", "a", "c"):
        _palette_png(tmp_path / "SegmentationClass" / f"{stem}.png", rng.choice([0, 1, 2, 255], size=(6, 5)))
    return tmp_path


def test_mask_folder_pairs_by_stem_and_masks_decide_what_is_scored(mask_folders: Path):
    data = MaskFolderDataset(mask_folders / "JPEGImages", mask_folders / "SegmentationClass")
    assert [(stem, image.name, mask.name) for stem, image, mask in data] == [
        ("a", "a.jpg", "a.png"),
        ("b", "b.jpg", "b.png"),
        ("c", "c.jpg", "c.png"),
    ]
    stems, images, masks = next(data.batches(batch_size=2))
    assert stems == ["a", "b"] and images.shape == (2, 3, 6, 5) and masks.shape == (2, 6, 5)
    assert masks.dtype == torch.int64 and torch.equal(masks[1], read_mask(mask_folders / "SegmentationClass" / "b.png"))


def test_mask_folder_split_file_selects_stems(mask_folders: Path):
    split = mask_folders / "val.txt"
    split.write_text("c\na\n")
    data = MaskFolderDataset(mask_folders / "JPEGImages", mask_folders / "SegmentationClass", split_file=split)
    assert [stem for stem, _, _ in data] == ["c", "a"]
    split.write_text("a\nnope\n")
    with pytest.raises(InputError, match="no mask"):
        MaskFolderDataset(mask_folders / "JPEGImages", mask_folders / "SegmentationClass", split_file=split)


def test_mask_folder_refuses_orphan_masks_and_size_mismatches(mask_folders: Path):
    _palette_png(mask_folders / "SegmentationClass" / "z.png", np.zeros((6, 5)))
    with pytest.raises(InputError, match="no image"):
        MaskFolderDataset(mask_folders / "JPEGImages", mask_folders / "SegmentationClass")
    (mask_folders / "SegmentationClass" / "z.png").unlink()
    _palette_png(mask_folders / "SegmentationClass" / "a.png", np.zeros((5, 5)))
    data = MaskFolderDataset(mask_folders / "JPEGImages", mask_folders / "SegmentationClass")
    with pytest.raises(InputError, match="mask of a is"):
        list(data.batches(batch_size=3))
