"""What shaped each stored artefact of the evaluation protocols, as plain-value records to fingerprint.

* the clean set: the image files (relative path and SHA-256), ``image_size`` and the resize that stores them;
  for the cross-task protocol, the files read in place (SHA-256 of each image and mask, COCO ids);
* an adversarial set: the clean set's fingerprint, the attack (name, parameters, label, which seeds its
  random draws), eps, the source model (zoo name, upstream, weights file hash, preprocessing; a user's module by
  a hash of its tensors; a feature extractor; precomputed files' SHA-256), the seed, and for the
  classification protocol the labels it was told and the batching;
* a prediction file: the set's fingerprint, the defense (name, parameters, a hash of its module's tensors),
  the target model, the seed and batching;
* a report row: its prediction file, the clean prediction file its fooling rate compares with, and the labels.

Each record also holds :func:`~nrp.fingerprint.numerics_versions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nrp.eval.cross_task_images import TaskImage
from nrp.eval.datasets import CLEAN_RESIZE, EvalImages
from nrp.fingerprint import file_sha256, fingerprint, module_identity, numerics_versions


def clean_record(images: EvalImages, image_size: int) -> dict[str, Any]:
    """The clean set: which files, stored at which size, by which resize."""
    return {"kind": "clean", "images": [[str(source.relative), file_sha256(source.path)] for source in images.sources],
            "image_size": image_size, "resize": CLEAN_RESIZE, "numerics": numerics_versions()}


def labels_fingerprint(images: EvalImages) -> str:
    """The labels and target classes an attack is told and rows are scored against."""
    return fingerprint([images.labels, images.targets])


def set_record(clean: str, key: str, attack: dict[str, Any], eps: float, source: Any, seed: int,
               kind: str = "adversarial", **task: Any) -> dict[str, Any]:
    """One adversarial set of either protocol (``clean``: the clean set's fingerprint; ``source``: the identity of
    what it was crafted on; ``kind``: ``adversarial``, or ``cross_task_set`` for the cross-task protocol's sets;
    ``task``: what else shaped it, the classification protocol's ``labels`` and ``batch_size``)."""
    return {"kind": kind, "clean": clean, "key": key, "attack": attack, "eps": eps, "source": source, "seed": seed,
            **task, "numerics": numerics_versions()}


def task_clean_record(images: Sequence[TaskImage]) -> dict[str, Any]:
    """The cross-task protocol's clean images, read in place: each stem, file and SHA-256, COCO id, mask's SHA-256."""
    return {"kind": "cross_task_clean",
            "images": [[image.stem, str(image.path), file_sha256(image.path), image.image_id,
                        None if image.mask is None else file_sha256(image.mask)] for image in images],
            "numerics": numerics_versions()}


def defense_identity(name: str, params: dict[str, Any], module: nn.Module) -> dict[str, Any]:
    """A defense: its registered name, parameters and what its module computes (purifier weights included)."""
    return {"name": name, "params": params, "module": module_identity(module)}


def prediction_record(set_fingerprint: str, key: str, defense: Any, target: Any, seed: int,
                      batch_size: int) -> dict[str, Any]:
    """The top-5 predictions of one target behind one defense on one set (``key`` seeds randomised defenses)."""
    return {"kind": "predictions", "set": set_fingerprint, "key": key, "defense": defense, "target": target,
            "seed": seed, "batch_size": batch_size, "numerics": numerics_versions()}


def row_fingerprint(prediction: dict[str, Any], clean_prediction: dict[str, Any], labels: str) -> str:
    """A report row: the predictions it scores, the clean ones its fooling rate compares with, the labels."""
    return fingerprint({"predictions": fingerprint(prediction), "clean": fingerprint(clean_prediction), "labels": labels})
