"""``nrp eval`` end to end: the classification protocol, the curves, the cross-task protocol and the reports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.eval.config import NO_DEFENSE, EvalConfig
from nrp.eval.curves import CurveConfig, eps_curve, iteration_curves
from nrp.eval.datasets import read_batch
from nrp.eval.protocol import ClassificationRun, ProgressFactory, run_classification, silent_progress
from nrp.distributed import setup, teardown

logger = logging.getLogger(__name__)

REPORT_FOLDER = "report"
GRID_FILE = "grid.png"


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
        curves = _curves(run, config)
        cross_rows = _cross_task(config, run, progress)
        from nrp.eval.reports import write_report
        return write_report(out, run.rows, cross_rows, config.to_dict(), config.seed, grids, curves,
                            metrics=(config.metric, "fooling_rate"))
    finally:
        teardown(context)


def write_grid(run: ClassificationRun, config: EvalConfig, path: Path) -> Path | None:
    """Clean | adversarial | defended images of the first ``grid_images`` images, captioned with the first target's predictions."""
    if not run.sets or config.grid_images < 1:
        return None
    chosen = next((s for s in run.sets if s.attack_label == config.grid_attack), run.sets[0])
    defenses = [label for label in run.defenses if label != NO_DEFENSE]
    defense_label = config.grid_defense if config.grid_defense in run.defenses else (defenses[0] if defenses else NO_DEFENSE)
    stems = run.images.stems()[: config.grid_images]
    clean = read_batch(run.clean.paths(stems)).to(run.models.device)
    adversarial = read_batch(chosen.paths(stems)).to(run.models.device)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        defended = run.defenses[defense_label](adversarial).clamp(0, 1)
        target = run.models.classifier(config.targets[0])
        predictions = [target(batch).argmax(1).cpu() for batch in (clean, adversarial, defended)]
    names = imagenet_class_names()
    labels = run.images.labels
    captions = []
    for index in range(len(stems)):
        row = []
        for prediction in predictions:
            label = int(prediction[index])
            mark = "" if labels is None else (" ✓" if label == labels[index] else " ✗")
            row.append(f"{names[label] if label < len(names) else label}{mark}")
        captions.append(row)
    images = [[clean[i].cpu(), adversarial[i].cpu(), defended[i].cpu()] for i in range(len(stems))]
    titles = [f"clean (labels: {config.targets[0]})", f"{chosen.attack_label} ({chosen.source}, eps {chosen.eps:g})",
              f"{defense_label}"]
    from nrp.eval.reports.grid import image_grid
    return image_grid(images, captions, path, column_titles=titles)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names, 0-based (torchvision ships them with its weight descriptions)."""
    import torchvision
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _curves(run: ClassificationRun, config: EvalConfig) -> dict[str, list[dict[str, Any]]] | None:
    curves: dict[str, list[dict[str, Any]]] = {}
    if len(config.eps) > 1:
        curves["eps"] = eps_curve(run.rows, config.targets[0])
    if config.curves:
        settings = CurveConfig.parse(dict(config.curves))
        defense_label = config.grid_defense if config.grid_defense in run.defenses else next(iter(run.defenses))
        stems = run.images.stems()[: settings.images]
        clean = read_batch(run.clean.paths(stems)).to(run.models.device)
        labels = None if run.images.labels is None else run.images.labels[: settings.images]
        curves["iterations"] = iteration_curves(settings, clean, run.models, run.defenses[defense_label], config.seed,
                                                labels)
    return curves or None


def _cross_task(config: EvalConfig, run: ClassificationRun, progress: ProgressFactory) -> list[dict[str, Any]]:
    if not config.cross_task:
        return []
    from nrp.eval.cross_task import run_cross_task
    return run_cross_task(config, run.defenses, run.models.device, progress)
