"""``nrp demo``: the paper's Table 1 protocol, offline, on real pretrained models and real labelled photos.

Sources: EfficientNet-Lite0 and the Lite0+Lite1 ensemble (white-box to themselves); black-box target:
EfficientNet-Lite2. Attacks at eps 16/255: SSP on Lite0's early features (label-free), FGSM, MI-FGSM, DIM and
DIM-TI. Defenses: none, JPEG (q=75), TVM, median (3x3), R&P, and the shipped NRP-Lite, static and dynamic.
Images, at 224x224: the 20 labelled ImageNet photos of the foolbox wheel, or the photos labelled by the
agreement of Lite0, Lite1 and Lite2 (:mod:`nrp.offline.agreement`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nrp.eval.config import EvalConfig

LITE0, LITE1, LITE2 = "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"
SSP_LAYER = "_blocks.4"  # end of Lite0's third stage, stride 8: the layer the shipped purifier was trained on
BLACK_BOX_TARGET = LITE2


def demo_config(images: Path, labels: Path, out: Path, quick: bool = False, seed: int = 0) -> EvalConfig:
    """The demo's experiment; ``quick`` keeps 4 images and few attack steps (for tests and a first look)."""
    steps = 2 if quick else 10
    ssp_steps = 5 if quick else 100
    attacks: list[Any] = [
        {"name": "ssp", "backbone": LITE0, "layer": SSP_LAYER, "steps": ssp_steps, "label": "SSP"},
        {"name": "fgsm", "label": "FGSM"},
        {"name": "mi_fgsm", "steps": steps, "label": "MI-FGSM"},
        {"name": "dim", "steps": steps, "label": "DIM"},
        {"name": "dim_ti_fgsm", "steps": steps, "label": "DIM-TI"},
    ]
    defenses: list[Any] = [
        {"name": "none", "label": "No defense"},
        {"name": "jpeg", "quality": 75, "label": "JPEG (q=75)"},
        {"name": "tvm", "label": "TVM"},
        {"name": "median", "window": 3, "label": "Median (3x3)"},
        {"name": "random_resize_pad", "label": "R&P"},
        {"name": "nrp_lite_shipped", "label": "NRP-Lite"},
        {"name": "nrp_lite_shipped_dynamic", "label": "NRP-Lite (dynamic)"},
    ]
    config = EvalConfig(
        images=str(images), labels=str(labels), image_size=224, max_images=4 if quick else None, out=str(out),
        sources=[LITE0, f"{LITE0}+{LITE1}"], attacks=attacks, eps=[16.0], defenses=defenses,
        targets=[BLACK_BOX_TARGET, LITE0, LITE1], batch_size=10, seed=seed, device="cpu", grid_images=4 if quick else 6,
        grid_attack="DIM-TI", grid_defense="NRP-Lite",
        curves=None if quick else {"source": LITE0, "target": BLACK_BOX_TARGET, "attacks": ["i_fgsm", "mi_fgsm", "ssp"],
                                   "iterations": [1, 2, 5, 10], "images": 10, "backbone": LITE0, "layer": SSP_LAYER},
    )
    config.validate()
    return config
