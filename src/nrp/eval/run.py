"""``nrp eval`` end to end: the classification protocol, the curves, the cross-task protocol and the reports."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.distributed import setup, teardown
from nrp.errors import InputError
from nrp.eval.adaptive import adaptive_rows, write_adaptive
from nrp.eval.artefacts import write_json
from nrp.eval.components import NO_DEFENSE, Component
from nrp.eval.config import EvalConfig
from nrp.eval.cross_task import run_cross_task
from nrp.eval.curves import CurveConfig, eps_curve, iteration_curves
from nrp.eval.datasets import StoredImages, batch_ranges, read_batch
from nrp.eval.predictions import defended_as_scored, load_predictions, prediction_path
from nrp.eval.progress import ProgressFactory, silent_progress
from nrp.eval.protocol import ClassificationRun, build_defense, run_classification
from nrp.eval.records import defense_identity
from nrp.eval.reports import write_report
from nrp.eval.reports.examples import choose_examples
from nrp.eval.reports.grid import CORRECT, WRONG, image_grid
from nrp.eval.reports.html import Figure
from nrp.eval.sets import ImageSet
from nrp.fingerprint import fingerprint, numerics_versions

logger = logging.getLogger(__name__)

REPORT_FOLDER = "report"
GRID_FILE = "grid.png"
CURVES_FILE = "curves.json"
CURVES_STAGE = "curves (Figures 3 and 6)"
"""The progress description of the curves, computed after the classification stages."""
ADAPTIVE_STAGE = "adaptive attacks (through each defense)"
"""The progress description of the attack entries crafted through the defense, after the curves."""


def run_evaluation(
    config: EvalConfig,
    provided_models: dict[str, nn.Module] | None = None,
    progress: ProgressFactory = silent_progress,
) -> dict[str, Path]:
    """Run the whole experiment of ``config`` (resuming whatever is stored) and write its report on rank 0.

    Under ``torchrun`` every process takes its share of the batches; rank 0 merges and reports.

    Returns:
        The report files by kind (rank 0; other ranks get an empty dict).
    """
    context = setup(config.device)
    try:
        run = run_classification(config, context, provided_models, progress)
        if not context.is_main:
            return {}
        out = Path(config.out) / REPORT_FOLDER
        grids = [grid] if (grid := write_grid(run, config, out / GRID_FILE)) is not None else []
        curves = _curves(run, config, progress)
        cross_rows = _cross_task(config, run, progress)
        files = write_report(out, run.rows, cross_rows, config.to_dict(), config.seed, grids, curves,
                             metrics=(config.metric, "fooling_rate"))
        if config.adaptive_components():
            files.update(_adaptive(run, config, progress, out))
        return files
    finally:
        teardown(context)


def _adaptive(run: ClassificationRun, config: EvalConfig, progress: ProgressFactory, out: Path) -> dict[str, Path]:
    """The attack entries crafted through each defense in front of each target, on the stored clean images;
    their table (``report/adaptive.{json,md}``)."""
    if run.images.labels is None:
        raise InputError("attacks crafted through the defense (adaptive) need labelled images (set 'labels')")
    attacks = config.adaptive_components()
    x = StoredImages(run.clean.paths(run.images.stems()), run.models.device)  # read a batch at a time
    y = torch.tensor(run.images.labels, device=run.models.device)
    total = len(attacks) * len(config.eps) * len(run.defenses) * len(config.targets)
    with progress(ADAPTIVE_STAGE, total) as bar:
        rows = adaptive_rows(attacks, config.eps, run.defenses, config.targets, run.models.classifier,
                             lambda value: _substitute(value, run.models.device), x, y, config.seed,
                             config.batch_size, on_row=lambda row: bar.update(1))
    return write_adaptive(rows, out)


def _substitute(value: Any, device: torch.device) -> nn.Module:
    """A substitute defense entry (name or mapping) built as the run builds its defenses."""
    component = Component.parse(value, "defense")
    return build_defense(component.name, component.params, device)


def write_grid(run: ClassificationRun, config: EvalConfig, path: Path) -> Figure | None:
    """Clean | adversarial | defended images of photos chosen by a stated rule, with the first target's predictions.

    The rows are :func:`~nrp.eval.reports.examples.choose_examples` of the stored predictions (as scored in the
    tables): photos the attack fools that the defense restores, then photos it does not restore. Each row is
    titled with its true label; each tile is captioned with the target's prediction, ✓ when it is the truth.
    The returned figure's caption states the rule.
    """
    if not run.sets or config.grid_images < 1:
        return None
    chosen = next((s for s in run.sets if s.attack_label == config.grid_attack), run.sets[0])
    undefended = next((c.label for c in config.defense_components() if c.name == NO_DEFENSE), None)
    others = [label for label in run.defenses if label != undefended]
    defense = config.grid_defense if config.grid_defense in run.defenses else (others[0] if others else undefended)
    target_name = config.targets[0]
    stems = run.images.stems()

    def stored(adversarial_set: ImageSet, label: str | None) -> list[int]:
        if label is None:  # no undefended target in the run: predict here
            return _predictions(run, adversarial_set, stems, target_name, config.batch_size)
        return load_predictions(prediction_path(Path(config.out), adversarial_set, label, target_name))[:, 0].tolist()

    clean_predictions, attacked, defended_predictions = stored(run.clean, undefended), stored(chosen, undefended), stored(chosen, defense)
    labels = run.images.labels
    truth = labels if labels is not None else clean_predictions
    reference = "the true label" if labels is not None else "the clean prediction"
    choice = choose_examples(truth, attacked, defended_predictions, config.grid_images, defense, reference)
    picked = [stems[i] for i in choice.indices]
    clean = read_batch(run.clean.paths(picked)).to(run.models.device)
    adversarial = read_batch(chosen.paths(picked)).to(run.models.device)
    shown = defended_as_scored(chosen, stems, choice.indices, defense, run.defenses[defense], config.batch_size,
                               config.seed, run.models.device)
    names = imagenet_class_names()

    def name(label: int) -> str:
        return names[label] if 0 <= label < len(names) else str(label)

    captions = [[f"{name(p[i])} {CORRECT if p[i] == truth[i] else WRONG}" for p in (clean_predictions, attacked, defended_predictions)]
                for i in choice.indices]
    row_titles = [f"{stems[i]}: true label {name(truth[i])}" if labels is not None else f"{stems[i]}: no label"
                  for i in choice.indices]
    images = [[clean[r].cpu(), adversarial[r].cpu(), shown[r].cpu()] for r in range(len(picked))]
    titles = ["clean", f"{chosen.attack_label} ({chosen.source}, eps {chosen.eps:g}/255)", f"{chosen.attack_label} + {defense}"]
    image_grid(images, captions, path, column_titles=titles, row_titles=row_titles)
    caption = (f"Rows: {choice.rule}. Columns: the clean photo, its {chosen.attack_label} adversarial (crafted on "
               f"{chosen.source}, eps {chosen.eps:g}/255), and that behind {defense}. Under each tile: "
               f"{target_name}'s prediction as scored in the tables, ✓ when it is {reference}, ✗ when not.")
    return Figure(path, caption)


def _predictions(run: ClassificationRun, adversarial_set: ImageSet, stems: list[str], target: str,
                 batch_size: int) -> list[int]:
    """The undefended ``target``'s top-1 on every image of ``adversarial_set``."""
    model, paths, predictions = run.models.classifier(target), adversarial_set.paths(stems), []
    with torch.no_grad():
        for _, positions in batch_ranges(len(paths), batch_size):
            batch = read_batch([paths[i] for i in positions]).to(run.models.device)
            predictions += model(batch).argmax(1).tolist()
    return predictions


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names, 0-based (torchvision ships them with its weight descriptions)."""
    import torchvision
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _curves(run: ClassificationRun, config: EvalConfig, progress: ProgressFactory) -> dict[str, list[dict[str, Any]]] | None:
    curves: dict[str, list[dict[str, Any]]] = {}
    if len(config.eps) > 1:
        curves["eps"] = eps_curve(run.rows, config.targets[0])
    if config.curves:
        curves["iterations"] = _iteration_curves(run, config, progress)
    return curves or None


def _iteration_curves(run: ClassificationRun, config: EvalConfig, progress: ProgressFactory) -> list[dict[str, Any]]:
    """The Figure 3/6 points, stored in ``RUN/curves.json`` and reused while what shaped them is unchanged."""
    settings = CurveConfig.parse(dict(config.curves))
    defense_label = config.grid_defense if config.grid_defense in run.defenses else next(iter(run.defenses))
    component = next(c for c in config.defense_components() if c.label == defense_label)
    record = {"kind": "curves", "settings": dict(config.curves), "seed": config.seed, "clean": run.clean.fingerprint,
              "labels": run.images.labels[: settings.images] if run.images.labels is not None else None,
              "defense": defense_identity(component.name, component.params, run.defenses[defense_label]),
              "models": [run.models.identity(name) for name in (settings.source, settings.target)],
              "extractor": run.models.extractor_identity(settings.backbone, settings.layer),
              "numerics": numerics_versions()}
    path = Path(config.out) / CURVES_FILE
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if isinstance(stored, dict) and stored.get("fingerprint") == fingerprint(record):
        logger.info("curves: reusing %s", path)
        return stored["points"]
    stems = run.images.stems()[: settings.images]
    clean = read_batch(run.clean.paths(stems)).to(run.models.device)
    labels = None if run.images.labels is None else run.images.labels[: settings.images]
    with progress(CURVES_STAGE, len(stems)) as bar:
        points = iteration_curves(settings, clean, run.models, run.defenses[defense_label], config.seed, labels)
        bar.update(len(stems))
    write_json(path, {"fingerprint": fingerprint(record), "record": record, "points": points})
    return points


def _cross_task(config: EvalConfig, run: ClassificationRun, progress: ProgressFactory) -> list[dict[str, Any]]:
    if not config.cross_task:
        return []
    return run_cross_task(config, run.defenses, run.models.device, progress)
