"""Datasets for the cross-task protocol: COCO-style instance annotations and VOC-style label-mask folders.

The paper scores detection and instance segmentation on MS-COCO val (mAP at IoU 0.5, Tables 2, 4, 7) and
semantic segmentation on CamVid (pixel accuracy, Tables 4, 6). Both layouts are read here; scoring lives
in :mod:`nrp.eval.detection` and :mod:`nrp.eval.segmentation`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

from nrp.errors import InputError
from nrp.io.discover import IMAGE_SUFFIXES, ImageSource
from nrp.io.read import iter_batches

# torchvision's COCO detectors output labels in this 91-entry space, and label k IS the official COCO
# category id k (1 = person ... 90 = toothbrush; the ten ids COCO skips are "N/A", 0 is background).
TORCHVISION_COCO_LABELS: tuple[str, ...] = tuple(MaskRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"])

# PASCAL VOC names of classes that COCO spells differently, so VOC-style annotations map onto COCO labels.
_NAME_ALIASES = {"aeroplane": "airplane", "motorbike": "motorcycle", "sofa": "couch", "tvmonitor": "tv"}
# Label names that stand for no category: torchvision's background and the ten unused COCO ids.
_PLACEHOLDER_NAMES = frozenset({"__background__", "N/A"})
_REQUIRED_ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")


def quiet() -> contextlib.AbstractContextManager:
    """Swallow what pycocotools prints to stdout ("loading annotations...", "DONE"): a library does not print."""
    return contextlib.redirect_stdout(io.StringIO())


def load_coco(annotation_file: str | os.PathLike) -> COCO:
    """Read a COCO instances JSON into a ``pycocotools.coco.COCO`` index, without printing.

    Annotations lacking ``iscrowd`` get 0 and those lacking ``area`` get the area of their mask (polygons
    or RLE) or, without one, of their box, so hand-made files work with ``COCOeval``.

    Raises:
        InputError: the file is missing, not JSON, not a COCO instances file, or an annotation lacks
            one of ``id``, ``image_id``, ``category_id``, ``bbox``.
    """
    path = Path(annotation_file)
    if not path.is_file():
        raise InputError(f"annotation file not found: {path}")
    try:
        dataset = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(dataset, dict) or not all(key in dataset for key in ("images", "annotations", "categories")):
        raise InputError(f"{path} is not a COCO instances file: it needs 'images', 'annotations' and 'categories'")
    images = {image["id"]: image for image in dataset["images"]}
    for annotation in dataset["annotations"]:
        lacking = [key for key in _REQUIRED_ANNOTATION_KEYS if key not in annotation]
        if lacking:
            raise InputError(f"{path}: annotation {annotation.get('id', '?')} lacks {', '.join(lacking)}")
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation:
            annotation["area"] = _area(annotation, images.get(annotation["image_id"], {}))
    coco = COCO()
    coco.dataset = dataset
    with quiet():
        coco.createIndex()
    return coco


def _area(annotation: dict, image: dict) -> float:
    segmentation = annotation.get("segmentation")
    if segmentation and "height" in image and "width" in image:
        if isinstance(segmentation, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, image["height"], image["width"]))
        elif isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, image["height"], image["width"])
        else:
            rle = segmentation
        return float(mask_utils.area(rle))
    return float(annotation["bbox"][2] * annotation["bbox"][3])


def _normalise_name(name: str) -> str:
    key = name.lower().replace(" ", "").replace("_", "").replace("-", "")
    return _NAME_ALIASES.get(key, key)


def category_mapping(coco: COCO, label_names: Sequence[str] = TORCHVISION_COCO_LABELS) -> dict[int, int]:
    """Map a model's label indices to the dataset's category ids by category name.

    ``label_names[k]`` names the model's label ``k``. Names are compared case-insensitively, ignoring spaces,
    underscores and hyphens, with the PASCAL VOC spellings aeroplane, motorbike, sofa, tvmonitor read as
    COCO's airplane, motorcycle, couch, tv; the placeholders ``__background__`` and ``N/A`` never match.
    For the official COCO annotations and torchvision's detectors
    this is the identity on the 80 category ids.

    Returns:
        ``{model label: dataset category id}`` for every label whose name the dataset has; labels without
        a match are absent (their detections cannot be scored).

    Raises:
        InputError: no name is shared, so no detection could ever be scored.
    """
    by_name = {_normalise_name(category["name"]): category["id"] for category in coco.loadCats(coco.getCatIds())}
    mapping = {
        label: by_name[_normalise_name(name)]
        for label, name in enumerate(label_names)
        if name not in _PLACEHOLDER_NAMES and _normalise_name(name) in by_name
    }
    if not mapping:
        known = ", ".join(sorted(category["name"] for category in coco.loadCats(coco.getCatIds()))[:5])
        raise InputError(f"no category of the dataset ({known}, ...) matches a model label name; pass the mapping yourself")
    return mapping


class CocoDataset:
    """A COCO-style instances JSON (boxes, polygon or RLE masks, categories) and the folder of its images.

    Iterating gives ``(image_id, file_path)`` in ascending image id. Every listed file must exist.

    Args:
        annotation_file: e.g. ``annotations/instances_val2017.json``.
        image_folder: the folder the images' ``file_name`` entries are relative to, e.g. ``val2017/``.
        image_ids: score only these images (e.g. the first 500 for a quick run); default all of them.

    Raises:
        InputError: unreadable annotations, an unknown image id, or images missing from ``image_folder``.

    Example:
        >>> data = CocoDataset("instances_val2017.json", "val2017")  # doctest: +SKIP
        >>> for image_ids, images in data.batches(8):  # doctest: +SKIP
        ...     predictions = detect(detector, images)
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_folder: str | os.PathLike,
        image_ids: Iterable[int] | None = None,
    ) -> None:
        self.annotation_file = Path(annotation_file)
        self.image_folder = Path(image_folder)
        self.coco = load_coco(annotation_file)
        known = set(self.coco.getImgIds())
        ids = sorted(known) if image_ids is None else sorted(set(image_ids))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise InputError(f"image id {unknown[0]} is not in {self.annotation_file} ({len(unknown)} unknown ids)")
        if not ids:
            raise InputError(f"{self.annotation_file} lists no images")
        self.image_ids: list[int] = ids
        missing = [i for i in ids if not self.path(i).is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} of {len(ids)} images are missing from {self.image_folder}, "
                f"e.g. {self.coco.imgs[missing[0]]['file_name']}"
            )

    def path(self, image_id: int) -> Path:
        """The image file of ``image_id``."""
        return self.image_folder / self.coco.imgs[image_id]["file_name"]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __iter__(self) -> Iterator[tuple[int, Path]]:
        return ((image_id, self.path(image_id)) for image_id in self.image_ids)

    def category_mapping(self, label_names: Sequence[str] = TORCHVISION_COCO_LABELS) -> dict[int, int]:
        """``{model label: category id}`` matched by name; see :func:`category_mapping`."""
        return category_mapping(self.coco, label_names)

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Decode the images lazily: ``(image_ids, images)`` with images (B, 3, H, W) in [0, 1].

        Consecutive images of one size share a batch (see :func:`nrp.io.iter_batches`); files that fail to
        decode are logged and left out, so score only the ids the batches gave.
        """
        sources = [ImageSource(path=path, relative=Path(path.name)) for _, path in self]
        for indices, images in iter_batches(sources, batch_size):
            yield [self.image_ids[i] for i in indices], images


def read_mask(path: str | os.PathLike) -> torch.Tensor:
    """Decode a label PNG to an int64 tensor (H, W) of class indices.

    Palette images (VOC's ``SegmentationClass``) give their palette indices, grayscale images their values;
    the colours are never looked at.

    Raises:
        InputError: the file cannot be decoded or holds colour (RGB) pixels instead of class indices.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("P", "L", "I", "I;16", "I;16L", "I;16B"):
                raise InputError(
                    f"{path} is a {image.mode} image; a label mask must hold one class index per pixel "
                    "(palette or grayscale PNG)"
                )
            labels = np.array(image, dtype=np.int64)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise InputError(f"cannot decode label mask {path}: {str(error).splitlines()[0] if str(error) else error}") from None
    return torch.from_numpy(labels)


class MaskFolderDataset:
    """Images and label masks in two folders, paired by file stem (PASCAL VOC / SegNet CamVid layout).

    The masks decide what is scored: every ``*<mask_suffix>`` file in ``mask_folder`` (not recursive)
    needs an image of the same stem in ``image_folder`` with a suffix in ``IMAGE_SUFFIXES``. Mask pixels
    hold class indices; the ignore value (255 in VOC) is the scorer's business. Iterating gives
    ``(stem, image_path, mask_path)`` sorted by stem.

    Args:
        image_folder: e.g. ``VOC2012/JPEGImages``.
        mask_folder: e.g. ``VOC2012/SegmentationClass``.
        split_file: optional text file of stems, one per line (e.g. ``ImageSets/Segmentation/val.txt``);
            only those are used.
        mask_suffix: suffix of the mask files.

    Raises:
        InputError: a folder is missing, no masks are found, a listed stem has no mask, or a mask has no image.
    """

    def __init__(
        self,
        image_folder: str | os.PathLike,
        mask_folder: str | os.PathLike,
        split_file: str | os.PathLike | None = None,
        mask_suffix: str = ".png",
    ) -> None:
        self.image_folder, self.mask_folder = Path(image_folder), Path(mask_folder)
        for folder in (self.image_folder, self.mask_folder):
            if not folder.is_dir():
                raise InputError(f"folder not found: {folder}")
        masks = {p.stem: p for p in self.mask_folder.iterdir() if p.is_file() and p.name.endswith(mask_suffix)}
        if split_file is not None:
            if not Path(split_file).is_file():
                raise InputError(f"split file not found: {split_file}")
            stems = [line.strip() for line in Path(split_file).read_text().splitlines() if line.strip()]
            absent = [stem for stem in stems if stem not in masks]
            if absent:
                raise InputError(f"{len(absent)} stems of {split_file} have no mask in {self.mask_folder}, e.g. {absent[0]}")
        else:
            stems = sorted(masks)
        if not stems:
            raise InputError(f"no *{mask_suffix} masks in {self.mask_folder}")
        images = {
            p.stem: p for p in sorted(self.image_folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        }
        orphans = [stem for stem in stems if stem not in images]
        if orphans:
            raise InputError(f"{len(orphans)} masks have no image in {self.image_folder}, e.g. {orphans[0]}")
        self.samples: list[tuple[str, Path, Path]] = [(stem, images[stem], masks[stem]) for stem in stems]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[tuple[str, Path, Path]]:
        return iter(self.samples)

    def batches(self, batch_size: int) -> Iterator[tuple[list[str], torch.Tensor, torch.Tensor]]:
        """Decode lazily: ``(stems, images, masks)``, images (B, 3, H, W) in [0, 1], masks (B, H, W) int64.

        Raises:
            InputError: a mask's size differs from its image's.
        """
        sources = [ImageSource(path=image, relative=Path(image.name)) for _, image, _ in self.samples]
        for indices, images in iter_batches(sources, batch_size):
            masks = [read_mask(self.samples[i][2]) for i in indices]
            for i, mask in zip(indices, masks):
                if mask.shape != images.shape[-2:]:
                    raise InputError(
                        f"mask of {self.samples[i][0]} is {tuple(mask.shape)} but its image is "
                        f"{tuple(images.shape[-2:])} (H, W)"
                    )
            yield [self.samples[i][0] for i in indices], images, torch.stack(masks)

