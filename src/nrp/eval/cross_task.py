"""The cross-task protocol (paper Table 2's detection and segmentation blocks, Tables 4, 6, 7): score task models
on clean and label-free adversarial images behind each defense.

Stages, each resumable:

1. the images of the ``cross_task`` section are listed (:func:`~nrp.eval.cross_task_images.load_task_images`);
2. every (attack, eps) set is crafted one image at a time (images keep their own sizes) and stored as PNG by the
   store both protocols use (:func:`~nrp.eval.sets.store_set`, attacks by :class:`~nrp.eval.crafting.Crafter`),
   under ``RUN/cross_task/sets/<attack>/eps<eps>/``; the clean images are read from their own files;
3. every (set, defense, model) is scored — the clean images read from their own files — and the scores are kept
   as ``RUN/cross_task/scores/<set>/<defense>/<model>.json`` (written atomically) with the fingerprint of what
   shaped them (set, defense name, parameters and tensors, model identity, seed, versions), so re-runs skip them
   and recompute those made under another configuration.

Each image is decoded once per set and defended once per defense; every model then scores the defended image. A
randomised defense draws from the global RNG seeded by (run seed, set, defense, image stem) inside
``torch.random.fork_rng``, as the classification protocol does, so scores do not depend on the order of work.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.errors import InputError
from nrp.eval.artefacts import folder_name, stamped, write_json
from nrp.eval.coco import CocoDataset, read_mask
from nrp.eval.components import CROSS_TASK
from nrp.eval.config import EvalConfig
from nrp.eval.crafting import Crafter
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.eval.cross_task_images import TaskImage, load_task_images
from nrp.eval.detection import DetectionScorer, detect
from nrp.eval.models import ModelBank
from nrp.eval.predictions import defend
from nrp.eval.progress import ProgressFactory, silent_progress
from nrp.eval.records import defense_identity, set_record, task_clean_record
from nrp.eval.segmentation import SegmentationScorer, segment
from nrp.eval.sets import ImageSet, batch_generator, clean_set, plan_sets, store_set
from nrp.fingerprint import fingerprint, module_identity, numerics_versions
from nrp.io import read_image

logger = logging.getLogger(__name__)

FOLDER = CROSS_TASK
TASK_OF_METRIC: dict[str, str] = {
    "bbox_map50": "detection",
    "segm_map50": "instance_segmentation",
    "pixel_accuracy": "semantic_segmentation",
    "mean_iou": "semantic_segmentation",
    "object_iou": "semantic_segmentation",
}
Scorer = DetectionScorer | SegmentationScorer


def run_cross_task(
    config: EvalConfig,
    defenses: Mapping[str, nn.Module],
    device: torch.device | str,
    progress: ProgressFactory = silent_progress,
    models: Mapping[str, nn.Module] | None = None,
) -> list[dict[str, Any]]:
    """Store the attacked sets of ``config.cross_task`` and score every (set, defense, model); resumes.

    Args:
        config: the experiment; its ``cross_task`` section (:class:`CrossTaskConfig`), ``eps`` (the default
            budgets, 0-255), ``seed``, ``out`` (results go to ``out/cross_task``) and ``model_weights`` are used.
        defenses: ``{label: module}`` mapping [0, 1] images (1, 3, H, W) to [0, 1]; the section's ``defenses``
            picks some by label.
        device: where attacks, defenses and models run.
        progress: progress-bar factory ``(description, total)``.
        models: ready-made modules by name (detector/segmenter names, or ``backbone:layer`` for SSP's feature
            extractor), used as they are: a user's own models, tests' tiny ones.

    Returns:
        Rows ``{task, attack, eps, defense, model, metric, value}`` (see
        :class:`~nrp.eval.reports.rows.CrossTaskRow`): the clean images are attack ``clean`` at eps 0;
        Mask R-CNN gives ``bbox_map50`` (task detection) and ``segm_map50`` (instance_segmentation), box-only
        detectors ``bbox_map50``, segmenters ``pixel_accuracy`` and ``mean_iou`` (semantic_segmentation).

    Raises:
        InputError: a bad section (see :meth:`CrossTaskConfig.parse`), an unknown defense label, or bad data.
    """
    cross = CrossTaskConfig.parse(config.cross_task or {}, config.eps)
    chosen = _choose_defenses(cross, defenses)
    device = torch.device(device)
    run_dir = Path(config.out) / FOLDER
    images, coco = load_task_images(cross)
    bank = ModelBank(device, {**config.model_weights, **cross.weights}, models)
    crafter = Crafter(bank, config.seed)
    stems = [image.stem for image in images]
    sets = plan_task_sets(run_dir, cross, images, crafter, config.seed)
    for task_set in sets[1:]:
        store_set(task_set, stems, functools.partial(crafter.maker, task_set, sets[0], stems), config.seed, None,
                  progress=progress, policy=config.stale,
                  description=f"cross-task {task_set.attack_label} eps {task_set.eps:g}")
    components = {component.label: component for component in config.defense_components()}
    identities = {label: defense_identity(components[label].name, components[label].params, module)
                  if label in components else module_identity(module) for label, module in chosen.items()}
    rows = []
    for task_set in sets:
        scores = score_set(task_set, images, coco, chosen, identities, cross, bank, run_dir, config.seed, progress,
                           config.stale)
        for (defense, model), (values, stamp) in scores.items():
            rows.extend({"task": TASK_OF_METRIC[metric], "attack": task_set.attack_label, "eps": task_set.eps,
                         "defense": defense, "model": model, "metric": metric, "value": value, "fingerprint": stamp}
                        for metric, value in values.items())
    return rows


def plan_task_sets(run_dir: Path, cross: CrossTaskConfig, images: list[TaskImage], crafter: Crafter,
                   seed: int) -> list[ImageSet]:
    """The clean images (read in place), then every (attack, eps) set under ``run_dir/sets``, each with its record."""
    stems = [image.stem for image in images]
    clean = dataclasses.replace(clean_set(run_dir, CROSS_TASK, {image.stem: image.path for image in images}),
                                record=task_clean_record(images))
    sets = [dataclasses.replace(s, record=set_record(clean.fingerprint, s.key, s.attack_record(), s.eps,
                                                     crafter.identity(s, stems), seed, kind="cross_task_set"))
            for s in plan_sets(run_dir, cross.attack_components(), cross.eps)]
    return [clean, *sets]


def _choose_defenses(cross: CrossTaskConfig, defenses: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    if cross.defenses is None:
        return dict(defenses)
    unknown = [label for label in cross.defenses if label not in defenses]
    if unknown:
        raise InputError(f"cross_task defenses: unknown labels {', '.join(unknown)}; the experiment's defenses: "
                         f"{', '.join(defenses)}")
    return {label: defenses[label] for label in cross.defenses}


def score_path(run_dir: Path, task_set: ImageSet, defense: str, model: str) -> Path:
    """Where the scores of ``model`` behind ``defense`` on ``task_set`` are kept."""
    return run_dir / "scores" / task_set.relative / folder_name(defense) / f"{folder_name(model)}.json"


def score_set(
    task_set: ImageSet,
    images: list[TaskImage],
    coco: CocoDataset | None,
    defenses: Mapping[str, nn.Module],
    identities: Mapping[str, Any],
    cross: CrossTaskConfig,
    models: ModelBank,
    run_dir: Path,
    seed: int,
    progress: ProgressFactory = silent_progress,
    policy: str = "recompute",
) -> dict[tuple[str, str], tuple[dict[str, float], str]]:
    """``{(defense, model): ({metric: value}, fingerprint)}`` on ``task_set``, computing only those not kept from
    an earlier run under the same record (``identities``: each defense label's identity, :mod:`nrp.eval.records`)."""
    names = [*cross.detectors, *cross.segmenters]
    records = {(defense, name): {"kind": "cross_task_scores", "set": task_set.fingerprint, "key": task_set.key,
                                 "defense": identities[defense], "model": models.task_identity(name), "seed": seed,
                                 "numerics": numerics_versions()}
               for defense in defenses for name in names}
    scores: dict[tuple[str, str], dict[str, float]] = {}
    missing: dict[str, list[str]] = {}
    for (defense, name), record in records.items():
        path = score_path(run_dir, task_set, defense, name)
        payload = json.loads(path.read_text()) if path.is_file() else None
        if stamped(payload, record, f"cross-task scores of {name} behind {defense} on {task_set.key}", policy):
            scores[(defense, name)] = payload["scores"]
        else:
            missing.setdefault(defense, []).append(name)
    if not missing:
        return {pair: (values, fingerprint(records[pair])) for pair, values in scores.items()}
    scorers: dict[tuple[str, str], Scorer] = {
        (defense, name): DetectionScorer(coco) if name in cross.detectors else SegmentationScorer(cross.num_classes)
        for defense, todo in missing.items() for name in todo
    }
    paths = task_set.paths([image.stem for image in images])
    with torch.no_grad(), progress(f"cross-task scores {task_set.attack_label} eps {task_set.eps:g}", len(images)) as bar:
        for image, path in zip(images, paths):
            x = read_image(path).to(models.device)[None]
            target = _target_mask(image, x)
            for defense, todo in missing.items():
                defended = defend(defenses[defense], x, batch_generator(seed, f"{task_set.key}/{defense}/{image.stem}", 0))
                for name in todo:
                    scorer = scorers[(defense, name)]
                    model = models.task_model(name, name in cross.detectors, cross.num_classes)
                    if isinstance(scorer, DetectionScorer) and image.image_id is not None:
                        scorer.update([image.image_id], detect(model, defended))
                    elif isinstance(scorer, SegmentationScorer) and target is not None:
                        scorer.update(segment(model, defended).cpu(), target[None])
            bar.update(1)
    for (defense, name), scorer in scorers.items():
        scores[(defense, name)] = scorer.compute()
        record = records[(defense, name)]
        write_json(score_path(run_dir, task_set, defense, name),
                   {"scores": scores[(defense, name)], "images": len(images), "fingerprint": fingerprint(record),
                    "record": record})
    return {(defense, name): (scores[(defense, name)], fingerprint(records[(defense, name)]))
            for defense in defenses for name in names}


def _target_mask(image: TaskImage, x: torch.Tensor) -> torch.Tensor | None:
    if image.mask is None:
        return None
    mask = read_mask(image.mask)
    if tuple(mask.shape) != tuple(x.shape[-2:]):
        raise InputError(f"mask {image.mask} is {tuple(mask.shape)} but its image is {tuple(x.shape[-2:])} (H, W)")
    return mask
