"""The images of the cross-task protocol and their stored adversarial sets (one PNG per image, manifest last).

Images keep their own sizes (COCO's are about 640x480, all different) and are attacked one at a time. A set is
one (attack, eps) pair, stored as ``RUN/cross_task/sets/<attack>/eps<eps>/<stem>.png``; ``manifest.json`` is
written after the last image and records the image list, so a set with a matching manifest is complete, and an
interrupted set keeps every image already stored. SSP draws each image's random start from a generator seeded by
(run seed, set, image stem): the stored image is the same whatever the batching, the order or the subset run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nrp.atomic import atomic_path
from nrp.attacks import ssp
from nrp.errors import InputError
from nrp.eval.coco import CocoDataset, MaskFolderDataset, load_coco
from nrp.eval.config import Component
from nrp.eval.crafting import CLEAN, MANIFEST, PRECOMPUTED, SSP_DEFAULTS, SSP_MODEL_KEYS, batch_generator, safe_name
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.eval.protocol import ProgressFactory
from nrp.io import IMAGE_SUFFIXES, read_image, write_image

logger = logging.getLogger(__name__)

# (backbone, layer, weights or None) -> SSP's feature extractor
ExtractorFactory = Callable[[str, str, "str | None"], nn.Module]


@dataclass(frozen=True)
class TaskImage:
    """One image: its file, its COCO id when it is scored for detection, its label mask when scored for segmentation."""

    stem: str
    path: Path
    image_id: int | None = None
    mask: Path | None = None


@dataclass(frozen=True)
class TaskSet:
    """The clean images (``attack`` is ``None``: read from their own files) or one stored (attack, eps) set."""

    attack: Component | None
    eps: float
    folder: Path | None

    @property
    def label(self) -> str:
        """The attack's label, ``clean`` for the clean images."""
        return CLEAN if self.attack is None else self.attack.label

    @property
    def relative(self) -> Path:
        """``clean`` or ``<attack>/eps<eps>``: the set's place under ``sets/`` and ``scores/``."""
        return Path(CLEAN) if self.attack is None else Path(safe_name(self.attack.label)) / f"eps{self.eps:g}"

    @property
    def key(self) -> str:
        """The set's identity in seeds."""
        return f"cross_task/{self.label}/{self.eps:g}"

    def path(self, image: TaskImage) -> Path:
        """Where ``image`` of this set is read from."""
        return image.path if self.folder is None else self.folder / f"{image.stem}.png"


def plan_task_sets(run_dir: Path, cross: CrossTaskConfig) -> list[TaskSet]:
    """The clean set, then every (attack, eps) set under ``run_dir/sets``."""
    sets = [TaskSet(None, 0.0, None)]
    for attack in cross.attack_components():
        for eps in cross.eps:
            sets.append(TaskSet(attack, float(eps), run_dir / "sets" / safe_name(attack.label) / f"eps{eps:g}"))
    return sets


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


def fingerprint(images: list[TaskImage]) -> str:
    """A short hash of the image list: stored sets and scores of another list are not reused."""
    listing = json.dumps([[image.stem, image.image_id, image.mask is not None] for image in images])
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def store_set(task_set: TaskSet, images: list[TaskImage], extractor: ExtractorFactory, seed: int, device: torch.device,
              progress: ProgressFactory) -> None:
    """Make and store every missing image of ``task_set``, then its manifest (nothing to do when it matches)."""
    manifest = task_set.folder / MANIFEST
    listing = fingerprint(images)
    if manifest.is_file() and json.loads(manifest.read_text()).get("fingerprint") == listing:
        return
    attack = None  # built on the first missing image: a set that only lost its manifest needs no model
    with progress(f"cross-task {task_set.label} eps {task_set.eps:g}", len(images)) as bar:
        for image in images:
            if not task_set.path(image).is_file():
                attack = attack or _attack(task_set, extractor)
                x = read_image(image.path).to(device)[None]
                generator = batch_generator(seed, f"{task_set.key}/{image.stem}", 0)
                write_image(attack(x, image, generator)[0].cpu(), task_set.path(image))
            bar.update(1)
    record = {"attack": task_set.label, "name": task_set.attack.name, "params": task_set.attack.params,
              "eps": task_set.eps, "images": len(images), "fingerprint": listing, "seed": seed}
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str))
    logger.info("stored cross-task set %s (%d images)", task_set.relative, len(images))


def _attack(task_set: TaskSet, extractor: ExtractorFactory) -> Callable[[torch.Tensor, TaskImage, torch.Generator], torch.Tensor]:
    """``run(x, image, generator) -> x_adv`` for one (1, 3, H, W) clean image in [0, 1]."""
    params = dict(task_set.attack.params)
    eps = task_set.eps / 255
    if task_set.attack.name == PRECOMPUTED:
        folder = Path(str(params["folder"]).replace("{eps}", f"{task_set.eps:g}"))
        return lambda x, image, generator: _precomputed(folder, image, x, eps)
    settings = {**SSP_DEFAULTS, **{key: params.pop(key) for key in SSP_MODEL_KEYS if key in params}}
    features = extractor(settings["backbone"], settings["layer"], settings.get("backbone_weights"))
    return lambda x, image, generator: ssp(x, features, eps=eps, generator=generator, **params)


def _precomputed(folder: Path, image: TaskImage, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The image made elsewhere (same stem, any image suffix), clipped into the eps ball of the clean image."""
    path = next((folder / f"{image.stem}{suffix}" for suffix in IMAGE_SUFFIXES
                 if (folder / f"{image.stem}{suffix}").is_file()), None)
    if path is None:
        raise InputError(f"precomputed adversarial image for '{image.stem}' not found in {folder}")
    stored = read_image(path).to(x.device)[None]
    if stored.shape != x.shape:
        raise InputError(f"{path} is {tuple(stored.shape[-2:])} (H, W) but its clean image {image.path} is "
                         f"{tuple(x.shape[-2:])}; precomputed images must keep the clean images' sizes")
    return torch.minimum(torch.maximum(stored, x - eps), x + eps).clamp(0, 1)
