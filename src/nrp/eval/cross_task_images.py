"""The images of the cross-task protocol: one folder scored for detection (COCO ids) and/or segmentation (masks).

Images keep their own sizes (COCO's are about 640x480, all different) and their own files: the clean set reads
them in place, and every stored set names an image by its stem (:mod:`nrp.eval.sets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nrp.errors import InputError
from nrp.eval.coco import CocoDataset, MaskFolderDataset, load_coco
from nrp.eval.cross_task_config import CrossTaskConfig


@dataclass(frozen=True)
class TaskImage:
    """One image: its file, its COCO id when it is scored for detection, its label mask when scored for segmentation."""

    stem: str
    path: Path
    image_id: int | None = None
    mask: Path | None = None


def load_task_images(cross: CrossTaskConfig) -> tuple[list[TaskImage], CocoDataset | None]:
    """The annotated images (first ``max_images`` COCO ids) and masked images (first ``max_images`` stems), by stem.

    An image both annotated and masked appears once. Returns the images sorted by stem and the COCO dataset.

    Raises:
        InputError: unreadable datasets (see :mod:`nrp.eval.coco`), or two different files with one stem.
    """
    by_stem: dict[str, TaskImage] = {}
    coco = None
    if cross.annotations:
        ids = sorted(load_coco(cross.annotations).getImgIds())[: cross.max_images] if cross.max_images else None
        coco = CocoDataset(cross.annotations, cross.images, ids)
        for image_id, path in coco:
            _add(by_stem, TaskImage(path.stem, path, image_id=image_id))
    if cross.masks:
        samples = list(MaskFolderDataset(cross.images, cross.masks, cross.split_file))[: cross.max_images]
        for stem, path, mask in samples:
            _add(by_stem, TaskImage(stem, path, mask=mask))
    return [by_stem[stem] for stem in sorted(by_stem)], coco


def _add(by_stem: dict[str, TaskImage], image: TaskImage) -> None:
    known = by_stem.get(image.stem)
    if known is None:
        by_stem[image.stem] = image
        return
    if known.path.resolve() != image.path.resolve() or (known.image_id is not None and image.image_id is not None):
        raise InputError(f"{known.path} and {image.path} share the stem {image.stem!r}; stored sets name images by stem")
    by_stem[image.stem] = TaskImage(image.stem, known.path, known.image_id if known.image_id is not None else image.image_id,
                                    known.mask or image.mask)
