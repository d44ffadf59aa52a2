"""Scoring semantic segmentation: pixel accuracy and mean IoU from a confusion matrix (paper Tables 4 and 6).

The paper reports SegNet-Basic's pixel accuracy on CamVid. Both numbers come from one confusion matrix
``C[t, p]`` (pixels of true class t predicted as p), summed over the whole test set, pixels whose target
is ``ignore_index`` left out:

- pixel accuracy = trace(C) / sum(C), the fraction of labelled pixels predicted right (torchmetrics'
  ``MulticlassAccuracy(average="micro")``);
- IoU of class k = C[k, k] / (row k + column k - C[k, k]); mean IoU averages it over the classes that
  occur in the targets or the predictions. A class absent from both has 0/0 and is left out of the mean,
  the convention of torchmetrics' ``MulticlassJaccardIndex(average="macro")``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from nrp.checkpoints import read_checkpoint
from nrp.errors import InputError
from nrp.eval.detection import build_torchvision_model, run_in_eval_mode
from nrp.features.backbones import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

DEFAULT_SEGMENTERS: dict[str, str] = {"fcn": "fcn_resnet50", "deeplabv3": "deeplabv3_resnet50"}


class TorchvisionSegmenter(nn.Module):
    """A torchvision segmentation model for [0, 1] images: normalises inside, returns the ``out`` logits.

    Args:
        model: e.g. ``torchvision.models.segmentation.fcn_resnet50(...)``; returns ``{"out": logits, ...}``.
        mean, std: per-channel normalisation the model was trained with (ImageNet's by default).
    """

    def __init__(
        self,
        model: nn.Module,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> logits (B, K, H, W)."""
        return self.model((images - self.mean) / self.std)["out"]


def build_segmenter(
    name: str = "deeplabv3",
    pretrained: bool = True,
    weights: str | os.PathLike | None = None,
    download: bool = True,
    **options: Any,
) -> TorchvisionSegmenter:
    """A torchvision semantic segmentation model wrapped for [0, 1] images (PASCAL VOC's 21 classes when pretrained).

    Args:
        name: a key of ``DEFAULT_SEGMENTERS`` or a builder of ``torchvision.models.segmentation``.
        pretrained, weights, download, options: see :func:`nrp.eval.detection.build_torchvision_model`.
            A weights file holding ``aux_classifier`` tensors builds the auxiliary head too (unless
            ``aux_loss`` is given); it is never used for scoring.

    Raises:
        InputError: unknown ``name``; WeightsUnavailableError, CheckpointError when weights cannot be had.

    Example:
        >>> segmenter = build_segmenter("fcn", pretrained=False, num_classes=3, aux_loss=False)
        >>> segmenter(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """
    known = torchvision.models.list_models(module=torchvision.models.segmentation)
    builder = DEFAULT_SEGMENTERS.get(name, name)
    if builder not in known:
        raise InputError(f"unknown segmenter {name!r}; known: {', '.join([*DEFAULT_SEGMENTERS, *known])}")
    if weights is not None and "aux_loss" not in options and not builder.startswith("lraspp"):
        options["aux_loss"] = any(key.startswith("aux_classifier.") for key in read_checkpoint(weights).state_dict)
    model = build_torchvision_model(builder, pretrained=pretrained, weights=weights, download=download, **options)
    return TorchvisionSegmenter(model)


def segment(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per-pixel class predictions of a segmentation model, in eval mode without gradients.

    The model's train/eval mode is restored afterwards.

    Args:
        model: maps images (B, 3, H, W) in [0, 1] to logits (B, K, h, w), or to a dict holding them under
            ``out`` (torchvision's raw models; normalise inside, e.g. with :class:`TorchvisionSegmenter`).
            Logits of another size than the images are resized bilinearly to (H, W) before the argmax.
        images: (B, 3, H, W) in [0, 1].

    Returns:
        Class indices (B, H, W), int64.

    Raises:
        InputError: images of the wrong shape or range, or a model output that is not (B, K, h, w).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"segment takes images (B, 3, H, W), got {tuple(images.shape)}")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"images must be in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    logits = run_in_eval_mode(model, images)
    if isinstance(logits, dict):
        logits = logits["out"]
    if logits.dim() != 4 or logits.shape[0] != images.shape[0]:
        raise InputError(f"a segmentation model must return logits (B, K, h, w), got {tuple(logits.shape)}")
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)


def confusion_matrix(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> torch.Tensor:
    """Confusion matrix ``C[t, p]`` (num_classes, num_classes), int64, of one batch, by ``torch.bincount``.

    Args:
        prediction: class indices (B, H, W) (or any shape equal to ``target``'s), in [0, num_classes).
        target: class indices of the same shape, in [0, num_classes) or ``ignore_index``.
        num_classes: K.
        ignore_index: target value whose pixels are left out (VOC's 255); ``None`` for none.

    Raises:
        InputError: shapes differ, or a value is out of range.
    """
    if prediction.shape != target.shape:
        raise InputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    if prediction.is_floating_point() or target.is_floating_point():
        raise InputError("prediction and target must hold integer class indices (argmax the logits first)")
    prediction, target = prediction.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        prediction, target = prediction[keep], target[keep]
    for label, values in (("prediction", prediction), ("target", target)):
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            allowed = f"[0, {num_classes})" + (f" or {ignore_index}" if label == "target" and ignore_index is not None else "")
            raise InputError(
                f"{label} holds values in [{int(values.min())}, {int(values.max())}]; expected {allowed}"
            )
    counts = torch.bincount(target * num_classes + prediction, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of scored pixels predicted right: trace(C) / sum(C)."""
    total = int(confusion.sum())
    if total == 0:
        raise InputError("no labelled pixels were scored: pixel accuracy is undefined")
    return float(confusion.diag().sum()) / total


def class_iou(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class (K,), float64; NaN for a class absent from both targets and predictions."""
    confusion = confusion.double()
    hits = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - hits
    return torch.where(union > 0, hits / union.clamp_min(1), torch.full_like(hits, float("nan")))


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean of :func:`class_iou` over the classes present in the targets or the predictions."""
    iou = class_iou(confusion)
    present = ~iou.isnan()
    if not bool(present.any()):
        raise InputError("no labelled pixels were scored: mean IoU is undefined")
    return float(iou[present].mean())


class SegmentationScorer:
    """Streaming pixel accuracy and mean IoU: ``update`` with each batch, then ``compute``.

    Args:
        num_classes: K, the number of classes the model predicts.
        ignore_index: target value left out of both numbers (VOC: 255); ``None`` scores every pixel. It
            must not be a class index.

    Example:
        >>> scorer = SegmentationScorer(num_classes=3)
        >>> scorer.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 255]]]))
        >>> scorer.compute()
        {'pixel_accuracy': 0.6666666666666666, 'mean_iou': 0.5}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if num_classes < 1:
            raise InputError(f"num_classes must be at least 1, got {num_classes}")
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise InputError(f"ignore_index {ignore_index} is a class index; it must lie outside [0, {num_classes})")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` and ``target`` class indices (B, H, W), e.g. from :func:`segment`."""
        batch = confusion_matrix(prediction, target, self.num_classes, self.ignore_index)
        self.confusion += batch.cpu()

    def compute(self) -> dict[str, float]:
        """``{"pixel_accuracy": ..., "mean_iou": ...}`` over everything added so far, in [0, 1]; with two classes
        also ``"object_iou"``, the IoU of class 1 (1.0 when neither targets nor predictions have it)."""
        scores = {"pixel_accuracy": pixel_accuracy(self.confusion), "mean_iou": mean_iou(self.confusion)}
        if self.num_classes == 2:  # a binary mask (object vs background): the object's own IoU too
            scores["object_iou"] = float(class_iou(self.confusion)[1].nan_to_num(1.0))
        logger.info("segmentation over %d pixels: %s", int(self.confusion.sum()), scores)
        return scores
