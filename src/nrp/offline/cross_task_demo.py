"""``nrp demo --cross-task``: the paper's cross-task claim (Tables 2 and 4 in miniature), offline.

One purifier, trained on EfficientNet-Lite0 features for ImageNet classification, defends two networks it never
saw, for two other tasks:

* YOLOv3-tiny (COCO detection; :mod:`nrp.zoo.detector`), scored by pycocotools' mAP at IoU 0.5;
* U²-Net-p (salient-object segmentation; :mod:`nrp.zoo.segmenter`), scored by pixel accuracy, mean IoU over
  (background, object) and the object mask's IoU.

There are no human annotations for these photos, so **the ground truth is each network's own output on the
clean photo**: YOLOv3-tiny's detections scoring at least :data:`GROUND_TRUTH_SCORE`, and U²-Net-p's mask
thresholded at 0.5. Clean scores are 100% by construction; the attacked columns measure how far an attack
moves each network from its own clean answer, and each defense how much of it comes back.

Attacks (eps 16/255, label-free): SSP on a source classifier's features (MobileNetV2 ``features.6``, the photo
resized to the classifier's 224x224 input inside its feature extractor, as in Table 4: the attacker knows nothing
of the task), and two task-aware, white-box ones: SSP on YOLOv3-tiny's own
output (objectness and class probabilities of every anchor) and on U²-Net-p's mask. Defenses: none, JPEG
(q=75), TVM, median (3x3) and the shipped NRP-Lite. Photos: the foolbox and agreement-set evaluation photos on
which YOLOv3-tiny finds at least one object, resized (short side) and centre-cropped to 320x320; never the
purifier's training photos. Scoring and resuming are :func:`nrp.eval.cross_task.run_cross_task`'s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from nrp.atomic import atomic_path
from nrp.defenses import create_defense
from nrp.eval.artefacts import folder_name
from nrp.eval.config import EvalConfig
from nrp.eval.coco import TORCHVISION_COCO_LABELS
from nrp.eval.cross_task import run_cross_task
from nrp.eval.datasets import resize_square
from nrp.eval.protocol import ProgressFactory, silent_progress
from nrp.eval.reports import write_report
from nrp.fingerprint import fingerprint, module_identity
from nrp.io import read_image
from nrp.offline.demo import MOBILENET_V2, SSP_LAYERS
from nrp.zoo.detector import DetectorOutputs, YoloDetector
from nrp.zoo.segmenter import SaliencySegmenter

logger = logging.getLogger(__name__)

DETECTOR, SEGMENTER = "yolov3_tiny", "u2netp"
DETECTOR_OUTPUTS, SEGMENTER_MASK = "outputs", "mask"  # the "layers" the task-aware SSP distorts
GROUND_TRUTH_SCORE = 0.5
IMAGE_SIZE = 320
FULL_IMAGES, QUICK_IMAGES = 16, 2
DEFENSES = (
    {"name": "none", "label": "No defense"},
    {"name": "jpeg", "quality": 75, "label": "JPEG (q=75)"},
    {"name": "tvm", "label": "TVM"},
    {"name": "median", "window": 3, "label": "Median (3x3)"},
    {"name": "nrp_lite_shipped", "label": "NRP-Lite"},
)
# The source network sees the 320x320 photo at its own 224x224 input (resized inside its feature extractor), as the
# classifier's preprocessing and the classification demo show it photos; chosen on held-out validation photos,
# never the evaluation photos (docs/cross_task.md: crafted at 320 the same SSP left U²-Net-p's IoU at 85%).
SOURCE_INPUT_SIZE = 224
SOURCE_SSP = f"SSP ({MOBILENET_V2} {SSP_LAYERS[MOBILENET_V2]} at {SOURCE_INPUT_SIZE})"
DETECTOR_SSP, SEGMENTER_SSP = "SSP (YOLOv3-tiny outputs)", "SSP (U²-Net-p mask)"
GRID_FILE = "grid_cross_task.png"


@dataclass(frozen=True)
class CrossTaskData:
    """The photos and their ground truth, laid out for :func:`nrp.eval.cross_task.run_cross_task`."""

    images: Path
    annotations: Path
    masks: Path


class SaliencyMask(nn.Module):
    """A :class:`SaliencySegmenter`'s object probability, as SSP's "feature map"."""

    def __init__(self, segmenter: SaliencySegmenter) -> None:
        super().__init__()
        self.segmenter = segmenter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmenter.probability(x)


def build_ground_truth(photos: Sequence[Path], folder: Path, detector: YoloDetector, segmenter: SaliencySegmenter,
                       count: int) -> CrossTaskData:
    """Resize the photos to 320x320 and keep the first ``count`` on which the detector finds an object scoring
    at least :data:`GROUND_TRUTH_SCORE`; write them, a COCO JSON of those detections and the thresholded masks.

    Idempotent: an existing layout made from the same candidate photos, count, detector and segmenter (their
    tensors' hashes) is reused; any other is rebuilt.
    """
    data = CrossTaskData(folder / "images", folder / "ground_truth.json", folder / "masks")
    shaped_by = fingerprint({"count": count, "photos": [str(photo) for photo in photos],
                             "detector": module_identity(detector), "segmenter": module_identity(segmenter)})
    if data.annotations.is_file() and json.loads(data.annotations.read_text()).get("info", {}).get("fingerprint") == shaped_by:
        return data
    for stale in [*data.images.glob("*.png"), *data.masks.glob("*.png")]:
        stale.unlink()  # a rebuild may keep other photos: no image of the earlier layout may stay behind
    images, annotations = [], []
    categories = [{"id": i, "name": name} for i, name in enumerate(TORCHVISION_COCO_LABELS)
                  if name not in ("__background__", "N/A")]
    for photo in photos:
        if len(images) == count:
            break
        x = resize_square(read_image(photo), IMAGE_SIZE)[None]
        with torch.no_grad():
            found = detector(x)[0]
            mask = segmenter(x).argmax(dim=1)[0]
        keep = found["scores"] >= GROUND_TRUTH_SCORE
        if not bool(keep.any()):
            continue
        image_id = len(images) + 1
        stem = f"{image_id:03d}_{photo.stem}"
        with atomic_path(data.images / f"{stem}.png") as tmp:
            Image.fromarray(_to_uint8(x[0])).save(tmp, format="PNG")
        with atomic_path(data.masks / f"{stem}.png") as tmp:
            Image.fromarray(mask.numpy().astype(np.uint8), mode="L").save(tmp, format="PNG")
        images.append({"id": image_id, "file_name": f"{stem}.png", "height": IMAGE_SIZE, "width": IMAGE_SIZE,
                       "source": str(photo)})
        for box, label in zip(found["boxes"][keep].tolist(), found["labels"][keep].tolist()):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    record = {"info": {"count": count, "fingerprint": shaped_by,
                       "ground_truth": f"{DETECTOR} detections scoring >= {GROUND_TRUTH_SCORE} "
                       f"and {SEGMENTER} masks at 0.5 on the clean photos"},
              "images": images, "annotations": annotations, "categories": categories}
    with atomic_path(data.annotations) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    logger.info("cross-task ground truth: %d photos, %d objects", len(images), len(annotations))
    return data


def cross_task_config(data: CrossTaskData, out: Path, quick: bool, seed: int, model_weights: Mapping[str, str]) -> EvalConfig:
    """The experiment: the cross-task section, defenses, eps 16 (``quick``: 3 SSP steps, else 20)."""
    steps = 3 if quick else 20
    attacks = [
        {"name": "ssp", "backbone": MOBILENET_V2, "layer": SSP_LAYERS[MOBILENET_V2], "input_size": SOURCE_INPUT_SIZE,
         "steps": steps, "label": SOURCE_SSP},
        {"name": "ssp", "backbone": DETECTOR, "layer": DETECTOR_OUTPUTS, "steps": steps, "label": DETECTOR_SSP},
        {"name": "ssp", "backbone": SEGMENTER, "layer": SEGMENTER_MASK, "steps": steps, "label": SEGMENTER_SSP},
    ]
    cross = {"images": str(data.images), "annotations": str(data.annotations), "masks": str(data.masks),
             "num_classes": 2, "attacks": attacks, "detectors": [DETECTOR], "segmenters": [SEGMENTER]}
    return EvalConfig(images=str(data.images), out=str(out), targets=[DETECTOR, SEGMENTER], eps=[16.0],
                      image_size=IMAGE_SIZE, defenses=list(DEFENSES), model_weights=dict(model_weights), seed=seed,
                      device="cpu", cross_task=cross)


def run_cross_task_demo(photos: Sequence[Path], out: Path, detector: YoloDetector, segmenter: SaliencySegmenter,
                        model_weights: Mapping[str, str], quick: bool = False, seed: int = 0,
                        progress: ProgressFactory = silent_progress) -> dict[str, Path]:
    """Lay out the ground truth, attack, defend, score (resuming) and write the report and the picture grid.

    Args:
        photos: candidate photos (evaluation photos only), tried in order.
        out: the run folder; the report goes to ``out/report``.
        detector, segmenter: the task networks (:func:`~nrp.zoo.detector.yolov3_tiny`, :func:`~nrp.zoo.segmenter.u2netp`).
        model_weights: weights files by name (MobileNetV2's, for the source SSP's feature extractor).
        quick: 2 photos and 3 SSP steps.
        seed: seed of every random draw.
        progress: progress-bar factory.

    Returns:
        The report files by kind (``json``, ``md``, ``html``, ...).
    """
    data = build_ground_truth(photos, out / "data", detector, segmenter, QUICK_IMAGES if quick else FULL_IMAGES)
    config = cross_task_config(data, out, quick, seed, model_weights)
    defenses = {item["label"]: _defense(item) for item in DEFENSES}
    provided = {DETECTOR: detector, SEGMENTER: segmenter, f"{DETECTOR}:{DETECTOR_OUTPUTS}": DetectorOutputs(detector),
                f"{SEGMENTER}:{SEGMENTER_MASK}": SaliencyMask(segmenter)}
    rows = run_cross_task(config, defenses, "cpu", progress, models=provided)
    report = out / "report"
    grid = write_grid(data, out, detector, segmenter, defenses["NRP-Lite"], report / GRID_FILE)
    notes = {"ground_truth": "each network's own output on the clean photo (YOLOv3-tiny detections scoring >= "
                             f"{GROUND_TRUTH_SCORE}; U²-Net-p mask at 0.5): clean scores are 100% by construction",
             "purifier": "NRP-Lite trained on EfficientNet-Lite0 _blocks.4 features (ImageNet photos, no task labels)",
             "attacks": f"{SOURCE_SSP}: from a source classifier; {DETECTOR_SSP} and {SEGMENTER_SSP}: task-aware, white-box",
             "preprocessing": "photos 320x320; YOLOv3-tiny letterboxes to 416 (no mean/std); U²-Net-p resizes to "
                              "320, ImageNet mean/std"}
    return write_report(report, [], rows, config.to_dict(), seed, [grid], extra=notes, title="NRP cross-task evaluation")


def _defense(item: Mapping[str, Any]) -> nn.Module:
    params = {key: value for key, value in item.items() if key not in ("name", "label")}
    if item["name"] == "none":
        return nn.Identity()
    if item["name"] == "nrp_lite_shipped":
        params["device"] = torch.device("cpu")
    return create_defense(item["name"], **params).eval()


def write_grid(data: CrossTaskData, out: Path, detector: YoloDetector, segmenter: SaliencySegmenter,
               purifier: nn.Module, path: Path, rows: int = 3) -> Path:
    """A picture grid: per photo, clean / SSP from the source / the same purified, with YOLOv3-tiny's boxes
    (score >= 0.5) drawn, then U²-Net-p's mask on each of the three (object in red)."""
    stems = sorted(p.stem for p in data.images.glob("*.png"))[:rows]
    attacked = out / "cross_task" / "sets" / folder_name(SOURCE_SSP) / "eps16"
    tiles = []
    for stem in stems:
        clean = read_image(data.images / f"{stem}.png")[None]
        adversarial = read_image(attacked / f"{stem}.png")[None]
        with torch.no_grad():
            purified = purifier(adversarial).clamp(0, 1)
        views = [clean, adversarial, purified]
        tiles.append([_boxes(view, detector) for view in views] + [_mask(view, segmenter) for view in views])
    size = IMAGE_SIZE
    canvas = Image.new("RGB", (size * 6, size * max(1, len(tiles))), "white")
    for row, images in enumerate(tiles):
        for column, image in enumerate(images):
            canvas.paste(image, (column * size, row * size))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def _boxes(x: torch.Tensor, detector: YoloDetector) -> Image.Image:
    with torch.no_grad():
        found = detector(x)[0]
    image = Image.fromarray(_to_uint8(x[0]))
    draw = ImageDraw.Draw(image)
    for box, label, score in zip(found["boxes"].tolist(), found["labels"].tolist(), found["scores"].tolist()):
        if score >= GROUND_TRUTH_SCORE:
            draw.rectangle(box, outline=(255, 0, 0), width=2)
            draw.text((box[0] + 3, box[1] + 2), f"{TORCHVISION_COCO_LABELS[label]} {score:.2f}", fill=(255, 255, 0))
    return image


def _mask(x: torch.Tensor, segmenter: SaliencySegmenter) -> Image.Image:
    with torch.no_grad():
        mask = segmenter(x).argmax(dim=1)[0].bool()
    shaded = x[0].clone()
    shaded[0] = torch.where(mask, 0.5 + 0.5 * shaded[0], 0.4 * shaded[0])
    shaded[1:] = torch.where(mask, 0.5 * shaded[1:], 0.4 * shaded[1:])
    return Image.fromarray(_to_uint8(shaded))


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
