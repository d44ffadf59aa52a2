"""``nrp demo``: the paper's Table 1 protocol, offline, on real pretrained models and real labelled photos.

As in the paper, the network that trained the purifier, the networks that craft the attacks and the defended
target are disjoint:

* purifier training network: EfficientNet-Lite0 (``_blocks.4``, the shipped NRP-Lite; the stand-in for VGG16);
* sources: MobileNetV2 and EfficientNet-Lite1, each alone and as an ensemble (mean logits); SSP is crafted on
  a source network's own features (MobileNetV2 ``features.6``, Lite1 ``_blocks.6``: both the end of the
  stride-8 stage, where Lite0's ``_blocks.4`` is);
* black-box target: EfficientNet-Lite2 (every model's accuracy is reported too).

A separate **grey-box** experiment (:func:`grey_box_config`) attacks from Lite0, the purifier's own training
network, with SSP at ``_blocks.7`` (stride 16), a stage other than the purifier's training layer.

Attacks at eps 16/255: SSP (label-free), FGSM, MI-FGSM, DIM and DIM-TI. Defenses: none, JPEG (q=75), TVM,
median (3x3), R&P, and the shipped NRP-Lite, static and dynamic. Images, at 224x224: the 20 labelled ImageNet
photos of the foolbox wheel, or the photos labelled by the agreement of Lite0, Lite1 and MobileNetV2, the
non-target networks (:mod:`nrp.offline.agreement`; the target never picks or labels a photo).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nrp.atomic import atomic_path
from nrp.eval.artefacts import MANIFEST
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config

LITE0, LITE1, LITE2 = "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"
MOBILENET_V2, SQUEEZENET = "mobilenet_v2", "squeezenet1_1"
PURIFIER_NETWORK, PURIFIER_LAYER = LITE0, "_blocks.4"  # what the shipped purifier was trained on
SOURCES = (MOBILENET_V2, LITE1, f"{MOBILENET_V2}+{LITE1}")
SSP_LAYERS = {MOBILENET_V2: "features.6", LITE1: "_blocks.6"}  # end of each source's stride-8 stage
BLACK_BOX_TARGET = LITE2
TARGETS = (LITE2, MOBILENET_V2, LITE1, LITE0, SQUEEZENET)
GREY_BOX_SOURCE, GREY_BOX_LAYER = LITE0, "_blocks.7"  # Lite0's stride-16 stage, not the purifier's layer
GREY_BOX_FOLDER = "grey_box"
PAPER_NAMES = {MOBILENET_V2: "MobileNetV2", LITE1: "Lite1", LITE0: "Lite0"}
CLEAN_WORK = ("sets/clean", "predictions/clean")  # a run's clean set and every prediction made on it


def _defenses() -> list[Any]:
    return [
        {"name": "none", "label": "No defense"},
        {"name": "jpeg", "quality": 75, "label": "JPEG (q=75)"},
        {"name": "tvm", "label": "TVM"},
        {"name": "median", "window": 3, "label": "Median (3x3)"},
        {"name": "random_resize_pad", "label": "R&P"},
        {"name": "nrp_lite_shipped", "label": "NRP-Lite"},
        {"name": "nrp_lite_shipped_dynamic", "label": "NRP-Lite (dynamic)"},
    ]


def _transfer_attacks(steps: int) -> list[Any]:
    return [
        {"name": "fgsm", "label": "FGSM"},
        {"name": "mi_fgsm", "steps": steps, "label": "MI-FGSM"},
        {"name": "dim", "steps": steps, "label": "DIM"},
        {"name": "dim_ti_fgsm", "steps": steps, "label": "DIM-TI"},
    ]


def _ssp(backbone: str, layer: str, steps: int) -> dict[str, Any]:
    return {"name": "ssp", "backbone": backbone, "layer": layer, "steps": steps,
            "label": f"SSP ({PAPER_NAMES[backbone]} {layer})"}


def demo_config(images: Path, labels: Path, out: Path, quick: bool = False, seed: int = 0,
                model_weights: Mapping[str, str] | None = None) -> EvalConfig:
    """The demo's black-box experiment; ``quick`` keeps 4 images and few attack steps (tests, a first look).

    ``model_weights`` maps model names to weights files (MobileNetV2's, for SSP's feature extractor).
    """
    steps, ssp_steps = (2, 5) if quick else (10, 100)
    attacks = [_ssp(backbone, layer, ssp_steps) for backbone, layer in SSP_LAYERS.items()] + _transfer_attacks(steps)
    config = EvalConfig(
        images=str(images), labels=str(labels), image_size=224, max_images=4 if quick else None, out=str(out),
        sources=list(SOURCES), attacks=attacks, eps=[16.0], defenses=_defenses(), targets=list(TARGETS),
        model_weights=dict(model_weights or {}), batch_size=10, seed=seed, device="cpu",
        grid_images=4 if quick else 6, grid_attack="DIM-TI", grid_defense="NRP-Lite",
        curves=None if quick else {"source": MOBILENET_V2, "target": BLACK_BOX_TARGET, "attacks": ["i_fgsm", "mi_fgsm", "ssp"],
                                   "iterations": [1, 2, 5, 10], "images": 10, "backbone": MOBILENET_V2,
                                   "layer": SSP_LAYERS[MOBILENET_V2]},
    )
    check_config(config)
    return config


def grey_box_config(images: Path, labels: Path, out: Path, quick: bool = False, seed: int = 0) -> EvalConfig:
    """The grey-box group: attacks from Lite0, the purifier's training network (SSP at ``_blocks.7``, not its
    training layer ``_blocks.4``), into ``out``; the same defenses and targets as :func:`demo_config`."""
    steps, ssp_steps = (2, 5) if quick else (10, 100)
    attacks = [_ssp(GREY_BOX_SOURCE, GREY_BOX_LAYER, ssp_steps), *_transfer_attacks(steps)[1::2]]  # MI-FGSM, DIM-TI
    config = EvalConfig(
        images=str(images), labels=str(labels), image_size=224, max_images=4 if quick else None, out=str(out),
        sources=[GREY_BOX_SOURCE], attacks=attacks, eps=[16.0], defenses=_defenses(), targets=list(TARGETS),
        batch_size=10, seed=seed, device="cpu", grid_images=4 if quick else 6, grid_attack="MI-FGSM",
        grid_defense="NRP-Lite",
    )
    check_config(config)
    return config


def share_clean_work(done: Path, out: Path) -> int:
    """Copy run ``done``'s clean set and clean predictions into run ``out`` where ``out`` has none; the number copied.

    The grey-box group scores the same clean images behind the same defenses and targets as the black-box
    experiment, so its clean stages (about 20 s on 20 photos) need not run twice. Nothing is trusted blindly:
    each copied file keeps the fingerprint of its record, and :func:`~nrp.eval.run.run_evaluation` recomputes
    whatever was made under another record. A part ``out`` already has is left alone; a set's manifest (which
    marks it complete) is copied last and every file atomically, so an interrupted copy resumes as a partial set.
    """
    copied = 0
    for part in CLEAN_WORK:
        source, target = done / part, out / part
        if not source.is_dir() or target.exists():
            continue
        files = sorted((path for path in source.rglob("*") if path.is_file() and not path.name.startswith(".")),
                       key=lambda path: (path.name == MANIFEST, str(path)))
        for path in files:
            with atomic_path(target / path.relative_to(source)) as tmp:
                shutil.copyfile(path, tmp)
            copied += 1
    return copied
