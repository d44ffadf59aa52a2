"""Labelled evaluation images: the NeurIPS-2017 dev set, a folder per class, or a folder plus a labels CSV."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from nrp.errors import ImageDecodeError, InputError
from nrp.io.discover import ImageSource, find_images
from nrp.io.labels import folder_labels, labels_for, read_labels_csv
from nrp.io.read import read_image

logger = logging.getLogger(__name__)

# The NeurIPS-2017 adversarial-competition dev set: images/ beside images.csv (ImageId, TrueLabel, TargetClass),
# labels 1-based over 1001 classes (0 is TF-slim's background class).
NEURIPS_CSV = "images.csv"
NEURIPS_IMAGES = "images"
NEURIPS_OFFSET = 1
# How resize_square stores a clean image (part of every stored set's fingerprint: change it, change this).
CLEAN_RESIZE = "short side to image_size, bilinear, antialiased; centre crop; 8-bit"


@dataclass(frozen=True)
class EvalImages:
    """The images of an evaluation, in a fixed order, with their labels and (optional) target classes.

    ``labels``/``targets`` are 0-based ImageNet classes, or ``None`` when the set has none (the fooling rate
    needs no labels).
    """

    sources: list[ImageSource]
    labels: list[int] | None
    targets: list[int] | None

    def __len__(self) -> int:
        return len(self.sources)

    def stems(self) -> list[str]:
        """Output names: each image's relative path without suffix, unique within the set."""
        return [str(source.relative.with_suffix("")) for source in self.sources]


def load_eval_images(images: str | os.PathLike, labels: str | os.PathLike | None = None, label_offset: int = 0,
                     max_images: int | None = None, exclude: Sequence[str | os.PathLike] = ()) -> EvalImages:
    """Find the images of an evaluation and their labels.

    * ``labels`` given: a CSV read by :func:`nrp.io.labels.read_labels_csv` (``filename,label`` or the
      NeurIPS-2017 ``ImageId,TrueLabel,TargetClass``), ``label_offset`` subtracted from every class;
    * else, if ``images`` holds ``images.csv`` and an ``images/`` folder: the NeurIPS-2017 dev set (offset 1);
    * else, if every image sits in a sub-folder: a folder per class, classes in sorted order;
    * else: no labels.

    ``max_images`` keeps the first images in sorted order. Folders in ``exclude`` (the run folder, when it
    lies inside ``images``) are not searched.

    Raises:
        InputError: no images, or an image without a label in the labels file.
    """
    root = Path(images)
    if labels is None and (root / NEURIPS_CSV).is_file() and (root / NEURIPS_IMAGES).is_dir():
        labels, label_offset, root = root / NEURIPS_CSV, NEURIPS_OFFSET, root / NEURIPS_IMAGES
    sources = find_images([root], exclude=exclude)
    if not sources:
        raise InputError(f"no images found in {root}")
    sources = sources[:max_images] if max_images else sources
    if labels is not None:
        by_stem, targets_by_stem = read_labels_csv(labels, offset=label_offset)
        targets = labels_for(sources, targets_by_stem, "target class") if targets_by_stem else None
        return EvalImages(sources, labels_for(sources, by_stem), targets)
    if all(len(source.relative.parts) >= 2 for source in sources):
        return EvalImages(sources, folder_labels(sources), None)
    logger.info("no labels for %s: only fooling rates will be reported", root)
    return EvalImages(sources, None, None)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(3, H, W)`` so its short side is ``size`` (antialiased bilinear), then centre-crop ``size x size``."""
    height, width = image.shape[-2:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        new = (max(size, round(height * scale)), max(size, round(width * scale)))
        image = F.interpolate(image[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0]
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        image = image[:, top:top + size, left:left + size]
    # Quantised to 8 bits so the stored clean PNG is exactly the image every attack starts from.
    return (image.clamp(0, 1) * 255).round() / 255


def batch_ranges(count: int, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[tuple[int, range]]:
    """``(batch number, positions)`` of the fixed batches ``[k*B, (k+1)*B)`` that process ``rank`` of ``world`` takes.

    Batches are dealt round-robin, so each batch (and every random draw seeded by its number) is the same
    whatever the number of processes.
    """
    for number, start in enumerate(range(0, count, batch_size)):
        if number % world == rank:
            yield number, range(start, min(start + batch_size, count))


def read_batch(paths: Sequence[Path], size: int | None = None) -> torch.Tensor:
    """Decode images to a ``(B, 3, size, size)`` batch (``size=None``: they must already share one size).

    Raises:
        ImageDecodeError: an image cannot be decoded (an evaluation needs every image; the message names it).
        InputError: images of different sizes with ``size=None``.
    """
    images = [read_image(path) for path in paths]
    if size is not None:
        images = [resize_square(image, size) for image in images]
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise InputError(f"images of one batch differ in size ({sorted(shapes)}); set image_size to resize them")
    return torch.stack(images)


class StoredImages:
    """Images on disk read a slice at a time: ``images[a:b]`` decodes those files to a ``(b - a, 3, H, W)`` batch.

    ``len()`` and slicing are what the adaptive evaluation needs of its images, so a run attacks its stored
    clean images batch by batch instead of holding them all in memory.
    """

    def __init__(self, paths: Sequence[Path], device: torch.device | str = "cpu") -> None:
        self.paths, self.device = list(paths), torch.device(device)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError(f"StoredImages takes slices, got {type(index).__name__}")
        return read_batch(self.paths[index]).to(self.device)


__all__ = ["EvalImages", "ImageDecodeError", "StoredImages", "batch_ranges", "load_eval_images", "read_batch",
           "resize_square"]
