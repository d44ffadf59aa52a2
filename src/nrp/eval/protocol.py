"""The classification protocol of Tables 1, 2 and 5: store clean and adversarial sets, predict, score.

Stages, each resumable and each shared between ``torchrun`` processes batch by batch:

1. the clean images, resized to ``image_size`` and quantised to 8 bits, are stored as PNG (``sets/clean``);
2. every (source, attack, eps) set is crafted from them (:mod:`nrp.eval.crafting`) and stored, batch by batch,
   by the set store the cross-task protocol uses too (:mod:`nrp.eval.sets`);
3. every (defense, target) pair predicts on every set (:mod:`nrp.eval.predictions`);
4. rank 0 turns the stored predictions into metric rows (:mod:`nrp.eval.metrics`).

Every stored set and prediction file carries the fingerprint of its record (:mod:`nrp.eval.records`): one
stored under another configuration is recomputed (or refused, ``stale: refuse``), and each row carries the
fingerprint of what it was computed from.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from nrp.defenses import DEFENSES, create_defense
from nrp.eval.components import NO_DEFENSE
from nrp.eval.config import EvalConfig
from nrp.eval.crafting import Crafter
from nrp.eval.datasets import EvalImages, load_eval_images, read_batch
from nrp.eval.metrics import classification_metrics
from nrp.eval.models import MEMORY_FORMAT, ModelBank
from nrp.eval.predictions import load_predictions, missing_pairs, predict_set, prediction_path, save_predictions
from nrp.eval.progress import ProgressFactory, silent_progress
from nrp.eval.records import (
    clean_record,
    defense_identity,
    labels_fingerprint,
    prediction_record,
    row_fingerprint,
    set_record,
)
from nrp.eval.sets import BatchMaker, ImageSet, clean_set, plan_sets, store_set
from nrp.distributed import DistributedContext, barrier

logger = logging.getLogger(__name__)


@dataclass
class ClassificationRun:
    """What the classification protocol produced: the metric rows and what made them."""

    rows: list[dict[str, Any]]
    images: EvalImages
    clean: ImageSet
    sets: list[ImageSet]
    models: ModelBank
    defenses: dict[str, nn.Module]


def run_classification(
    config: EvalConfig,
    context: DistributedContext,
    provided_models: dict[str, nn.Module] | None = None,
    progress: ProgressFactory = silent_progress,
) -> ClassificationRun:
    """Stages 1-4 for ``config`` on this process's share of the batches; every rank returns the same rows."""
    run_dir = Path(config.out)
    images = load_eval_images(config.images, config.labels, config.label_offset, config.max_images, exclude=[run_dir])
    stems = images.stems()
    models = ModelBank(context.device, config.model_weights, provided_models, config.preprocessing)
    for name in [*config.targets, *config.sources]:
        models.classifier(name)  # unknown names and missing weights fail here, before any work is stored
    components = config.defense_components()
    defenses = {component.label: build_defense(component.name, component.params, context.device)
                for component in components}
    identities = {c.label: defense_identity(c.name, c.params, defenses[c.label]) for c in components}
    clean = dataclasses.replace(clean_set(run_dir), record=clean_record(images, config.image_size))
    originals = [source.path for source in images.sources]
    store_set(clean, stems, functools.partial(_resized, originals, config.image_size), config.seed, config.batch_size,
              context, progress, config.stale, "clean images")
    labels_stamp = labels_fingerprint(images)
    crafter = Crafter(models, config.seed, config.image_size)
    sets = [dataclasses.replace(s, record=set_record(clean.fingerprint, s.key, s.attack_record(), s.eps,
                                                     crafter.identity(s, stems), config.seed, labels=labels_stamp,
                                                     batch_size=config.batch_size))
            for s in plan_sets(run_dir, config.transfer_components(), config.eps, config.sources)]
    labels = None if images.labels is None else torch.tensor(images.labels)
    targets = None if images.targets is None else torch.tensor(images.targets)
    for adversarial_set in sets:
        store_set(adversarial_set, stems, functools.partial(crafter.maker, adversarial_set, clean, stems, labels, targets),
                  config.seed, config.batch_size, context, progress, config.stale)
    records = {s.key: {(d, t): prediction_record(s.fingerprint, s.key, identities[d], models.identity(t), config.seed,
                                                 config.batch_size)
                       for d in defenses for t in config.targets}
               for s in [clean, *sets]}
    for adversarial_set in [clean, *sets]:
        _predict(adversarial_set, stems, defenses, records[adversarial_set.key], models, config, context, progress)
    rows = _rows(run_dir, clean, sets, list(defenses), config.targets, labels, targets, records, labels_stamp)
    return ClassificationRun(rows, images, clean, sets, models, defenses)


def _resized(paths: list[Path], size: int) -> BatchMaker:
    """The clean set's batches: the original images resized and quantised (:func:`~nrp.eval.datasets.resize_square`)."""
    return lambda positions, generator: read_batch([paths[i] for i in positions], size)


def _predict(adversarial_set: ImageSet, stems: list[str], defenses: dict[str, nn.Module],
             records: dict[tuple[str, str], dict[str, Any]], models: ModelBank, config: EvalConfig,
             context: DistributedContext, progress: ProgressFactory) -> None:
    run_dir = Path(config.out)
    pairs = missing_pairs(run_dir, adversarial_set, records, config.stale)
    if not pairs:
        return
    with progress(f"evaluate {adversarial_set.key}", len(stems)) as bar:
        local = predict_set(adversarial_set, stems, pairs, defenses, models.classifier, config.batch_size, config.seed,
                            context.device, context.rank, context.world_size, on_batch=bar.update)
    merged = _gather(local, context)
    if context.is_main:
        for (defense, target), by_position in merged.items():
            top5 = torch.stack([by_position[i] for i in range(len(stems))])
            save_predictions(prediction_path(run_dir, adversarial_set, defense, target), top5, records[defense, target])
    barrier(context)


def _gather(local: dict[tuple[str, str], dict[int, torch.Tensor]], context: DistributedContext) -> dict[tuple[str, str], dict[int, torch.Tensor]]:
    if not context.distributed:
        return local
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, local)
    merged: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    for part in gathered:
        for pair, by_position in part.items():
            merged.setdefault(pair, {}).update(by_position)
    return merged


def _rows(run_dir: Path, clean: ImageSet, sets: list[ImageSet], defenses: list[str], target_models: list[str],
          labels: torch.Tensor | None, targets: torch.Tensor | None,
          records: dict[str, dict[tuple[str, str], dict[str, Any]]], labels_stamp: str) -> list[dict[str, Any]]:
    clean_top5 = {(d, t): load_predictions(prediction_path(run_dir, clean, d, t)) for d in defenses for t in target_models}
    clean_top1 = {pair: classification_metrics(top5, labels, None)["top1"] for pair, top5 in clean_top5.items()}
    rows = []
    for adversarial_set in [clean, *sets]:
        aimed = _aimed_targets(adversarial_set, targets)
        for defense in defenses:
            for target in target_models:
                reference = clean_top5[defense, target]
                if adversarial_set is clean:
                    metrics = classification_metrics(reference, labels, None, aimed)
                else:
                    top5 = load_predictions(prediction_path(run_dir, adversarial_set, defense, target))
                    metrics = classification_metrics(top5, labels, reference[:, 0], aimed)
                stamp = row_fingerprint(records[adversarial_set.key][defense, target],
                                        records[clean.key][defense, target], labels_stamp)
                rows.append({"source": adversarial_set.source, "attack": adversarial_set.attack_label,
                             "eps": adversarial_set.eps, "defense": defense, "target": target, **metrics,
                             "clean_top1": clean_top1[defense, target], "fingerprint": stamp})
    return rows


def _aimed_targets(adversarial_set: ImageSet, targets: torch.Tensor | None) -> torch.Tensor | None:
    """The dataset's target classes for an attack aimed at them (``target: dataset``), else ``None``."""
    if adversarial_set.attack is None or adversarial_set.attack.params.get("target") != "dataset":
        return None
    return targets


def build_defense(name: str, params: dict[str, Any], device: torch.device) -> nn.Module:
    """Defense ``name`` with ``params`` on ``device``, in eval mode (``none``: the identity)."""
    if name == NO_DEFENSE:
        return nn.Identity()
    if "device" in inspect.signature(DEFENSES[name]).parameters:
        params = {"device": device, **params}
    return create_defense(name, **params).to(device, memory_format=MEMORY_FORMAT).eval()
