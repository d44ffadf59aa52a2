"""The images of the cross-task protocol and their stored adversarial sets (one PNG per image, manifest last).

Images keep their own sizes (COCO's are about 640x480, all different) and are attacked one at a time. A set is
one (attack, eps) pair, stored as ``RUN/cross_task/sets/<attack>/eps<eps>/<stem>.png`` (the label percent-encoded).
Its record (the image files and their hashes, the attack, eps, SSP's feature extractor, the seed, the package
versions) is fingerprinted as the classification sets' are (:mod:`nrp.eval.artefacts`): a set whose manifest has
the current fingerprint is complete, an interrupted one resumes, one of another fingerprint is recomputed. SSP draws each image's random start from a generator seeded by
(run seed, set, image stem): the stored image is the same whatever the batching, the order or the subset run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.attacks import ssp
from nrp.errors import InputError
from nrp.eval.artefacts import close_set_folder, folder_name, open_set_folder
from nrp.eval.coco import CocoDataset, MaskFolderDataset, load_coco
from nrp.eval.components import CLEAN, PRECOMPUTED, SSP_DEFAULTS, SSP_MODEL_KEYS, Component
from nrp.eval.crafting import batch_generator
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.eval.models import ModelBank
from nrp.eval.protocol import ProgressFactory
from nrp.fingerprint import file_sha256, fingerprint, numerics_versions
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
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The attack's label, ``clean`` for the clean images."""
        return CLEAN if self.attack is None else self.attack.label

    @property
    def relative(self) -> Path:
        """``clean`` or ``<attack>/eps<eps>``: the set's place under ``sets/`` and ``scores/``."""
        return Path(CLEAN) if self.attack is None else Path(folder_name(self.attack.label)) / f"eps{self.eps:g}"

    @property
    def key(self) -> str:
        """The set's identity in seeds."""
        return f"cross_task/{self.label}/{self.eps:g}"

    @property
    def fingerprint(self) -> str:
        """The fingerprint of :attr:`record`: everything that shaped the set."""
        return fingerprint(self.record)

    def path(self, image: TaskImage) -> Path:
        """Where ``image`` of this set is read from."""
        return image.path if self.folder is None else self.folder / f"{image.stem}.png"


def plan_task_sets(run_dir: Path, cross: CrossTaskConfig, images: list[TaskImage], models: ModelBank,
                   seed: int) -> list[TaskSet]:
    """The clean set, then every (attack, eps) set under ``run_dir/sets``, each with its record."""
    clean = {"kind": "cross_task_clean", "images": [[image.stem, str(image.path), file_sha256(image.path), image.image_id,
                                                     None if image.mask is None else file_sha256(image.mask)]
                                                    for image in images], "numerics": numerics_versions()}
    sets = [TaskSet(None, 0.0, None, clean)]
    for attack in cross.attack_components():
        for eps in cross.eps:
            task_set = TaskSet(attack, float(eps), run_dir / "sets" / folder_name(attack.label) / f"eps{eps:g}")
            record = {"kind": "cross_task_set", "clean": fingerprint(clean), "key": task_set.key,
                      "attack": {"name": attack.name, "params": attack.params, "label": attack.label}, "eps": float(eps),
                      "source": _source_identity(attack, float(eps), images, models), "seed": seed,
                      "numerics": numerics_versions()}
            sets.append(TaskSet(attack, float(eps), task_set.folder, record))
    return sets


def _source_identity(attack: Component, eps: float, images: list[TaskImage], models: ModelBank) -> Any:
    """SSP's feature extractor, or the precomputed files a set is made from."""
    if attack.name == PRECOMPUTED:
        folder = _precomputed_folder(attack, eps)
        found = [_find(folder, image.stem) for image in images]
        return {"folder": str(folder), "files": [None if path is None else file_sha256(path) for path in found]}
    params = {**SSP_DEFAULTS, **attack.params}
    return models.extractor_identity(params["backbone"], params["layer"], params.get("backbone_weights"))


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


def store_set(task_set: TaskSet, images: list[TaskImage], extractor: ExtractorFactory, seed: int, device: torch.device,
              progress: ProgressFactory, policy: str = "recompute") -> None:
    """Make and store every missing image of ``task_set``, then its manifest (nothing to do when it matches;
    a set stored under another record is recomputed, or refused with ``policy="refuse"``)."""
    if open_set_folder(task_set.folder, task_set.record, f"cross-task set {task_set.key}", policy):
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
    close_set_folder(task_set.folder, task_set.record, attack=task_set.label, eps=task_set.eps, images=len(images))
    logger.info("stored cross-task set %s (%d images)", task_set.relative, len(images))


def _attack(task_set: TaskSet, extractor: ExtractorFactory) -> Callable[[torch.Tensor, TaskImage, torch.Generator], torch.Tensor]:
    """``run(x, image, generator) -> x_adv`` for one (1, 3, H, W) clean image in [0, 1]."""
    params = dict(task_set.attack.params)
    eps = task_set.eps / 255
    if task_set.attack.name == PRECOMPUTED:
        folder = _precomputed_folder(task_set.attack, task_set.eps)
        return lambda x, image, generator: _precomputed(folder, image, x, eps)
    settings = {**SSP_DEFAULTS, **{key: params.pop(key) for key in SSP_MODEL_KEYS if key in params}}
    features = extractor(settings["backbone"], settings["layer"], settings.get("backbone_weights"))
    return lambda x, image, generator: ssp(x, features, eps=eps, generator=generator, **params)


def _precomputed_folder(attack: Component, eps: float) -> Path:
    """The folder of a precomputed attack at ``eps`` (``{eps}`` in its name filled in, 0-255 units)."""
    return Path(str(attack.params["folder"]).replace("{eps}", f"{eps:g}"))


def _find(folder: Path, stem: str) -> Path | None:
    """The file of ``stem`` in ``folder`` with any image suffix, or ``None``."""
    return next((folder / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES if (folder / f"{stem}{suffix}").is_file()), None)


def _precomputed(folder: Path, image: TaskImage, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The image made elsewhere (same stem, any image suffix), clipped into the eps ball of the clean image."""
    path = _find(folder, image.stem)
    if path is None:
        raise InputError(f"precomputed adversarial image for '{image.stem}' not found in {folder}")
    stored = read_image(path).to(x.device)[None]
    if stored.shape != x.shape:
        raise InputError(f"{path} is {tuple(stored.shape[-2:])} (H, W) but its clean image {image.path} is "
                         f"{tuple(x.shape[-2:])}; precomputed images must keep the clean images' sizes")
    return torch.minimum(torch.maximum(stored, x - eps), x + eps).clamp(0, 1)
