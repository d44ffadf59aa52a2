"""The classification protocol of Tables 1, 2 and 5: store clean and adversarial sets, predict, score.

Stages, each resumable and each shared between ``torchrun`` processes batch by batch:

1. the clean images, resized to ``image_size`` and quantised to 8 bits, are stored as PNG (``sets/clean``);
2. every (source, attack, eps) set is crafted from them and stored (:mod:`nrp.eval.crafting`);
3. every (defense, target) pair predicts on every set (:mod:`nrp.eval.predictions`);
4. rank 0 turns the stored predictions into metric rows (:mod:`nrp.eval.metrics`).

Every stored set and prediction file carries the fingerprint of its record (:mod:`nrp.eval.records`): one
stored under another configuration is recomputed (or refused, ``stale: refuse``), and each row carries the
fingerprint of what it was computed from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn

from nrp.defenses import DEFENSES, create_defense
from nrp.eval.artefacts import open_set_folder
from nrp.eval.components import LABEL_FREE_ATTACKS, NO_DEFENSE, PRECOMPUTED, SSP_DEFAULTS
from nrp.eval.config import EvalConfig
from nrp.eval.crafting import (
    CDA,
    AdversarialSet,
    Crafter,
    batch_generator,
    clean_set,
    finish_set,
    plan_sets,
    write_set,
)
from nrp.eval.datasets import EvalImages, batch_ranges, load_eval_images, read_batch
from nrp.eval.metrics import classification_metrics
from nrp.eval.models import MEMORY_FORMAT, ModelBank
from nrp.eval.predictions import load_predictions, missing_pairs, predict_set, prediction_path, save_predictions
from nrp.eval.records import (
    clean_record,
    defense_identity,
    labels_fingerprint,
    prediction_record,
    row_fingerprint,
    set_record,
)
from nrp.fingerprint import file_sha256
from nrp.io.discover import find_images
from nrp.distributed import DistributedContext

logger = logging.getLogger(__name__)


class Progress(Protocol):
    """What the protocol reports progress to: ``update(n)`` after each batch (tqdm's interface)."""

    def update(self, n: int = 1) -> Any: ...


ProgressFactory = Callable[[str, int], contextlib.AbstractContextManager[Progress]]


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def silent_progress(description: str, total: int) -> Iterator[Progress]:
    """A progress factory that reports nothing (library default; the command line passes tqdm bars)."""
    yield _Silent()


@dataclass
class ClassificationRun:
    """What the classification protocol produced: the metric rows and what made them."""

    rows: list[dict[str, Any]]
    images: EvalImages
    clean: AdversarialSet
    sets: list[AdversarialSet]
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
    defenses = {component.label: _build_defense(component.name, component.params, context.device)
                for component in components}
    identities = {c.label: defense_identity(c.name, c.params, defenses[c.label]) for c in components}
    clean = dataclasses.replace(clean_set(run_dir), record=clean_record(images, config.image_size))
    _store_clean(clean, images, config, context, progress)
    labels_stamp = labels_fingerprint(images)
    sets = [dataclasses.replace(s, record=set_record(clean.fingerprint, s.key, s.attack_record(), s.eps,
                                                     _source_identity(s, models), labels_stamp, config.seed,
                                                     config.batch_size))
            for s in plan_sets(run_dir, config.sources, config.attack_components(), config.eps)]
    labels = None if images.labels is None else torch.tensor(images.labels)
    targets = None if images.targets is None else torch.tensor(images.targets)
    crafter = Crafter(models, (3, config.image_size, config.image_size), config.seed)
    for adversarial_set in sets:
        _craft(adversarial_set, crafter, clean, stems, labels, targets, config, context, progress)
    records = {s.key: {(d, t): prediction_record(s.fingerprint, s.key, identities[d], models.identity(t), config.seed,
                                                 config.batch_size)
                       for d in defenses for t in config.targets}
               for s in [clean, *sets]}
    for adversarial_set in [clean, *sets]:
        _predict(adversarial_set, stems, defenses, records[adversarial_set.key], models, config, context, progress)
    rows = _rows(run_dir, clean, sets, list(defenses), config.targets, labels, targets, records, labels_stamp)
    return ClassificationRun(rows, images, clean, sets, models, defenses)


def _source_identity(adversarial_set: AdversarialSet, models: ModelBank) -> Any:
    """What the set is crafted on: the source classifier, SSP's/FFF's feature extractor, or precomputed files."""
    attack = adversarial_set.attack
    if attack.name not in LABEL_FREE_ATTACKS:
        return models.identity(adversarial_set.source)
    if attack.name == PRECOMPUTED:
        folder = Path(attack.params["folder"])
        return {"folder": str(folder), "files": [[str(s.relative), file_sha256(s.path)] for s in find_images([folder])]}
    if attack.name == CDA:
        return {"generator": file_sha256(Path(attack.params["weights"])), "inception": attack.params.get("inception", False)}
    params = {**SSP_DEFAULTS, **attack.params}
    layer = params["layer"] if attack.name == "ssp" else ",".join(params.get("layers") or ["default"])
    return models.extractor_identity(params["backbone"], layer, params.get("backbone_weights"))


def _store_clean(clean: AdversarialSet, images: EvalImages, config: EvalConfig, context: DistributedContext,
                 progress: ProgressFactory) -> None:
    if _open(clean, config, context):
        return
    stems = images.stems()
    paths = [source.path for source in images.sources]
    with progress("clean images", len(paths)) as bar:
        for _, positions in batch_ranges(len(paths), config.batch_size, context.rank, context.world_size):
            if not all(p.is_file() for p in (clean.paths(stems)[i] for i in positions)):
                write_set(clean, stems, positions, read_batch([paths[i] for i in positions], config.image_size))
            bar.update(len(positions))
    _finish(clean, len(paths), context)


def _craft(adversarial_set: AdversarialSet, crafter: Crafter, clean: AdversarialSet, stems: list[str],
           labels: torch.Tensor | None, targets: torch.Tensor | None, config: EvalConfig, context: DistributedContext,
           progress: ProgressFactory) -> None:
    if _open(adversarial_set, config, context):
        return
    attack = crafter.attack(adversarial_set, stems)
    clean_paths, adversarial_paths = clean.paths(stems), adversarial_set.paths(stems)
    with progress(f"craft {adversarial_set.key}", len(stems)) as bar:
        for number, positions in batch_ranges(len(stems), config.batch_size, context.rank, context.world_size):
            if not all(adversarial_paths[i].is_file() for i in positions):
                x = read_batch([clean_paths[i] for i in positions]).to(context.device)
                y = None if labels is None else labels[list(positions)].to(context.device)
                t = None if targets is None else targets[list(positions)].to(context.device)
                x_adv = attack(x, y, t, batch_generator(config.seed, adversarial_set.key, number), positions)
                write_set(adversarial_set, stems, positions, x_adv.cpu())
            bar.update(len(positions))
    _finish(adversarial_set, len(stems), context)


def _open(adversarial_set: AdversarialSet, config: EvalConfig, context: DistributedContext) -> bool:
    """Whether the set is complete under its fingerprint; a stale one is cleared (rank 0) before any rank writes."""
    complete = None
    if context.is_main:
        complete = open_set_folder(adversarial_set.folder, adversarial_set.record, f"set {adversarial_set.key}",
                                   config.stale)
    if context.distributed:
        shared = [complete]
        dist.broadcast_object_list(shared, src=0)
        complete = shared[0]
    return bool(complete)


def _finish(adversarial_set: AdversarialSet, count: int, context: DistributedContext) -> None:
    _barrier(context)
    if context.is_main:
        finish_set(adversarial_set, count)
    _barrier(context)


def _predict(adversarial_set: AdversarialSet, stems: list[str], defenses: dict[str, nn.Module],
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
    _barrier(context)


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


def _barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


def _rows(run_dir: Path, clean: AdversarialSet, sets: list[AdversarialSet], defenses: list[str], target_models: list[str],
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


def _aimed_targets(adversarial_set: AdversarialSet, targets: torch.Tensor | None) -> torch.Tensor | None:
    """The dataset's target classes for an attack aimed at them (``target: dataset``), else ``None``."""
    if adversarial_set.attack is None or adversarial_set.attack.params.get("target") != "dataset":
        return None
    return targets


def _build_defense(name: str, params: dict[str, Any], device: torch.device) -> nn.Module:
    if name == NO_DEFENSE:
        return nn.Identity()
    if "device" in inspect.signature(DEFENSES[name]).parameters:
        params = {"device": device, **params}
    return create_defense(name, **params).to(device, memory_format=MEMORY_FORMAT).eval()
