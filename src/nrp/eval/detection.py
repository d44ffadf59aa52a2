"""Scoring object detectors and instance segmenters with COCO mAP at IoU 0.5 (paper Tables 2, 4 and 7).

mAP is computed by pycocotools' ``COCOeval``, never here: boxes (``iou_type="bbox"``) and masks
(``iou_type="segm"``), averaged over the 101 recall points and over the categories that have ground truth,
for all object sizes, with at most 100 detections per image: the number COCOeval's summary prints as
``AP @[ IoU=0.50 | area=all | maxDets=100 ]`` (``stats[1]`` with its default parameters).
"""

from __future__ import annotations

import logging
import os
import pickle
import urllib.error
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torchvision
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from nrp.checkpoints import load_weights, read_checkpoint
from nrp.errors import CheckpointError, InputError, WeightsUnavailableError
from nrp.eval.coco import CocoDataset, quiet

logger = logging.getLogger(__name__)

DEFAULT_DETECTORS: dict[str, str] = {"maskrcnn": "maskrcnn_resnet50_fpn", "retinanet": "retinanet_resnet50_fpn"}
IOU_TYPES = ("bbox", "segm")
MASK_THRESHOLD = 0.5


def build_torchvision_model(
    builder: str,
    pretrained: bool = True,
    weights: str | os.PathLike | None = None,
    download: bool = True,
    **options: Any,
) -> nn.Module:
    """A torchvision model by builder name: pretrained from the torch hub cache, from a file, or random.

    Shared by :func:`build_detector` and :func:`nrp.eval.segmentation.build_segmenter`.

    Args:
        builder: torchvision builder name, e.g. ``maskrcnn_resnet50_fpn``.
        pretrained: load torchvision's default weights (COCO for detectors); ``False`` gives random weights
            (``weights=None, weights_backbone=None``), for tests and timing only.
        weights: a state dict file (``.pth``/``.safetensors``) to load instead; overrides ``pretrained``. The
            network is built as for random weights, so with ``BatchNorm2d`` where torchvision's pretrained
            build has ``FrozenBatchNorm2d``: the same state dict and, in eval mode, the same outputs.
        download: when the default weights are not in the cache, try to download them; else fail at once.
        **options: passed to the builder (``min_size``, ``box_score_thresh``, ``num_classes``, ...).

    Raises:
        WeightsUnavailableError: pretrained weights neither cached nor downloadable.
        CheckpointError: ``weights`` is unreadable or does not fit the network.
        InputError: ``options`` the builder refuses.
    """
    build = torchvision.models.get_model_builder(builder)
    default = torchvision.models.get_model_weights(builder).DEFAULT
    if weights is not None:
        options.setdefault("num_classes", len(default.meta["categories"]))
        model = _call(build, builder, weights=None, weights_backbone=None, **options)
        load_weights(model, read_checkpoint(weights).state_dict, str(weights), target=builder)
        return model
    if not pretrained:
        return _call(build, builder, weights=None, weights_backbone=None, **options)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(default.url)
    how = f"download {default.url} into {cached.parent} (or set TORCH_HOME) on a machine with network access, or pass weights=FILE"
    if not cached.is_file() and not download:
        raise WeightsUnavailableError(f"the weights of {builder} ({cached.name}) are not in the torch hub cache; {how}")
    try:
        return _call(build, builder, weights=default, **options)
    except (urllib.error.URLError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        if cached.is_file():
            raise CheckpointError(f"cached weights {cached} are unreadable ({reason}); delete the file to fetch it again") from None
        raise WeightsUnavailableError(f"the weights of {builder} could not be downloaded ({reason}); {how}") from None


def _call(build: Any, builder: str, **arguments: Any) -> nn.Module:
    try:
        return build(**arguments)
    except (TypeError, ValueError) as error:
        raise InputError(f"{builder} refused its options: {str(error).splitlines()[0]}") from None


def build_detector(
    name: str = "maskrcnn",
    pretrained: bool = True,
    weights: str | os.PathLike | None = None,
    download: bool = True,
    **options: Any,
) -> nn.Module:
    """A torchvision detector: ``maskrcnn`` or ``retinanet`` (the paper's) or any torchvision detection builder.

    The model takes a list of (3, H, W) images in [0, 1] and normalises and resizes them itself; use it
    with :func:`detect`. Its COCO labels are the official COCO category ids.

    Args:
        name: a key of ``DEFAULT_DETECTORS`` or a builder of ``torchvision.models.detection``
            (``fasterrcnn_resnet50_fpn``, ``maskrcnn_resnet50_fpn_v2``, ...).
        pretrained, weights, download, options: see :func:`build_torchvision_model`.

    Raises:
        InputError: unknown ``name``; WeightsUnavailableError, CheckpointError as there.

    Example:
        >>> detector = build_detector("maskrcnn", pretrained=False, min_size=64, max_size=96)
        >>> type(detector).__name__
        'MaskRCNN'
    """
    known = torchvision.models.list_models(module=torchvision.models.detection)
    builder = DEFAULT_DETECTORS.get(name, name)
    if builder not in known:
        raise InputError(f"unknown detector {name!r}; known: {', '.join([*DEFAULT_DETECTORS, *known])}")
    return build_torchvision_model(builder, pretrained=pretrained, weights=weights, download=download, **options)


def detect(model: nn.Module, images: torch.Tensor | Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Run a torchvision-style detector in eval mode without gradients.

    The model's train/eval mode is restored afterwards.

    Args:
        model: takes a list of (3, H, W) images in [0, 1] and returns one dict per image with ``boxes``
            (N, 4) in absolute xyxy pixels, ``labels`` (N,), ``scores`` (N,) and optionally ``masks``
            (N, 1, H, W) probabilities, like torchvision's detectors.
        images: (B, 3, H, W) in [0, 1], or a list of (3, H, W) images of any sizes.

    Returns:
        The model's predictions, one dict per image, detached.

    Raises:
        InputError: images of the wrong shape or outside [0, 1].
    """
    batch = list(images.unbind(0)) if isinstance(images, torch.Tensor) and images.dim() == 4 else list(images)
    if not batch:
        raise InputError("detect needs at least one image")
    for image in batch:
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise InputError(f"detect takes (B, 3, H, W) or (3, H, W) images, got {shape}")
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0:
            raise InputError(f"images must be in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    outputs = run_in_eval_mode(model, batch)
    return [{key: value.detach() for key, value in output.items()} for output in outputs]


def run_in_eval_mode(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)`` in eval mode without gradients, leaving the caller's train/eval mode as it was."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(inputs)
    finally:
        model.train(was_training)


def to_coco_results(
    image_id: int,
    prediction: Mapping[str, torch.Tensor],
    score_threshold: float = 0.0,
    label_to_category: Mapping[int, int] | None = None,
) -> list[dict[str, Any]]:
    """One image's predictions as COCO result dicts (JSON-ready: plain floats and strings).

    Each detection becomes ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``, plus
    ``"segmentation"`` (compressed RLE, ``counts`` as str) when the prediction has ``masks``: probabilities
    (N, 1, H, W) or (N, H, W) are thresholded at 0.5 (``> 0.5``, as torchvision's COCO evaluation does).

    Args:
        image_id: the image's COCO id.
        prediction: ``boxes`` (N, 4) xyxy pixels, ``labels`` (N,), ``scores`` (N,), optional ``masks``.
        score_threshold: detections scoring below it are dropped (default keep all).
        label_to_category: ``{model label: category id}``; labels it lacks are dropped. Default: labels
            are category ids already (torchvision's COCO detectors).

    Raises:
        InputError: missing keys or inconsistent lengths.
    """
    for key in ("boxes", "labels", "scores"):
        if key not in prediction:
            raise InputError(f"a prediction needs 'boxes', 'labels' and 'scores'; it has {sorted(prediction)}")
    boxes = prediction["boxes"].detach().cpu().double()
    labels = prediction["labels"].detach().cpu().tolist()
    scores = prediction["scores"].detach().cpu().double().tolist()
    if boxes.shape != (len(labels), 4) or len(scores) != len(labels):
        raise InputError(f"boxes {tuple(boxes.shape)}, labels ({len(labels)},) and scores ({len(scores)},) disagree")
    masks = prediction.get("masks")
    rles = _encode_masks(masks, len(labels)) if masks is not None else None
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    results = []
    for i, (label, score) in enumerate(zip(labels, scores)):
        category = label if label_to_category is None else label_to_category.get(label)
        if category is None or score < score_threshold:
            continue
        result = {"image_id": int(image_id), "category_id": int(category), "bbox": xywh[i], "score": score}
        if rles is not None:
            result["segmentation"] = rles[i]
        results.append(result)
    return results


def _encode_masks(masks: torch.Tensor, count: int) -> list[dict[str, Any]]:
    masks = masks.detach().cpu()
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3 or masks.shape[0] != count:
        raise InputError(f"masks must be (N, 1, H, W) or (N, H, W) with N = {count}, got {tuple(masks.shape)}")
    binary = (masks > MASK_THRESHOLD) if masks.is_floating_point() else masks.bool()
    # pycocotools wants (H, W, N) uint8 in Fortran order.
    rles = mask_utils.encode(np.asfortranarray(binary.permute(1, 2, 0).numpy().astype(np.uint8)))
    return [{"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")} for rle in rles]


def coco_map(
    coco_gt: COCO,
    results: Sequence[Mapping[str, Any]],
    iou_type: Literal["bbox", "segm"] = "bbox",
    iou: float = 0.5,
    image_ids: Iterable[int] | None = None,
    max_detections: int = 100,
) -> float:
    """COCO mean average precision at one IoU threshold, by pycocotools' ``COCOeval``.

    ``COCOeval`` runs with ``iouThrs = [iou]`` and ``maxDets = [max_detections]``; the value returned is
    what its summary reports for that threshold, area "all": the mean over categories with ground truth
    of the 101-point interpolated precision. With ``iou=0.5`` and 100 detections this equals ``stats[1]``
    of a ``COCOeval`` run with default parameters (IoU matching is done per threshold, so the other nine
    thresholds do not change it). Crowd regions are ignored, as COCOeval does.

    Args:
        coco_gt: ground truth, e.g. ``CocoDataset(...).coco``.
        results: COCO result dicts, e.g. from :func:`to_coco_results`; they must carry ``bbox`` for
            ``iou_type="bbox"`` and ``segmentation`` for ``"segm"``.
        iou_type: ``"bbox"`` (boxes) or ``"segm"`` (masks).
        iou: the IoU threshold in (0, 1]; the paper's is 0.5.
        image_ids: the images that were run through the model (images without results count their
            objects as missed); default all images of ``coco_gt``. Results on other images are ignored.
        max_detections: highest-scoring detections kept per image and category.

    Returns:
        mAP in [0, 1]; 0.0 when there are no results at all.

    Raises:
        InputError: bad ``iou_type`` or ``iou``, unknown image ids, results lacking the needed field, or no
            ground-truth object in the scored images (mAP undefined).
    """
    if iou_type not in IOU_TYPES:
        raise InputError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    if not 0.0 < iou <= 1.0:
        raise InputError(f"iou must be in (0, 1], got {iou}")
    known = set(coco_gt.getImgIds())
    ids = sorted(known) if image_ids is None else sorted(set(image_ids))
    outside = [i for i in ids if i not in known] or [r["image_id"] for r in results if r["image_id"] not in known]
    if outside:
        raise InputError(f"image id {outside[0]} is not in the ground truth")
    needed = "bbox" if iou_type == "bbox" else "segmentation"
    if any(needed not in result for result in results):
        raise InputError(f"{iou_type} mAP needs '{needed}' in every result; the model gave none (no masks?)")
    objects = [a for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=ids)) if not a.get("iscrowd", 0)]
    if not objects:
        raise InputError(f"no ground-truth objects in the {len(ids)} scored images: mAP is undefined")
    if iou_type == "segm" and any("segmentation" not in a for a in objects):
        raise InputError("segm mAP needs 'segmentation' in every ground-truth annotation")
    if not results:
        return 0.0
    # loadRes writes into the dicts it gets (area, id, ...), and would take a box over a mask: give it copies
    # holding only the field scored.
    keep = ("image_id", "category_id", "score", needed)
    with quiet():
        coco_dt = coco_gt.loadRes([{key: result[key] for key in keep} for result in results])
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.params.imgIds = ids
        evaluator.params.iouThrs = np.array([iou])
        evaluator.params.maxDets = [max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
    area_all = evaluator.params.areaRngLbl.index("all")
    precision = evaluator.eval["precision"][0, :, :, area_all, -1]  # (recall points, categories)
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else 0.0


class DetectionScorer:
    """Streaming mAP at one IoU for a detector over a COCO dataset: add batches, then ``compute``.

    Args:
        coco_gt: the ground truth (a :class:`CocoDataset` or a pycocotools ``COCO``).
        label_to_category: ``{model label: category id}``. Default: for a :class:`CocoDataset` its
            :meth:`~CocoDataset.category_mapping` onto torchvision's COCO label names (the identity on
            the official annotations), for a ``COCO`` labels are taken as category ids.
        score_threshold: detections below it are dropped before scoring.
        iou: the IoU threshold (paper: 0.5).

    Example:
        >>> scorer = DetectionScorer(dataset)  # doctest: +SKIP
        >>> for image_ids, images in dataset.batches(4):  # doctest: +SKIP
        ...     scorer.update(image_ids, detect(detector, purifier(images)))
        >>> scorer.compute()  # doctest: +SKIP
        {'bbox_map50': 0.54, 'segm_map50': 0.51}
    """

    def __init__(
        self,
        coco_gt: CocoDataset | COCO,
        label_to_category: Mapping[int, int] | None = None,
        score_threshold: float = 0.0,
        iou: float = 0.5,
    ) -> None:
        if isinstance(coco_gt, CocoDataset):
            self.coco = coco_gt.coco
            label_to_category = label_to_category if label_to_category is not None else coco_gt.category_mapping()
        else:
            self.coco = coco_gt
        if not 0.0 < iou <= 1.0:
            raise InputError(f"iou must be in (0, 1], got {iou}")
        self.label_to_category = label_to_category
        self.score_threshold = score_threshold
        self.iou = iou
        self.image_ids: list[int] = []
        self.results: list[dict[str, Any]] = []
        self._with_masks: bool | None = None
        self._seen: set[int] = set()

    def update(self, image_ids: Sequence[int], predictions: Sequence[Mapping[str, torch.Tensor]]) -> None:
        """Add the predictions of one batch; ``predictions[i]`` belongs to ``image_ids[i]``.

        Raises:
            InputError: lengths differ, an image is added twice, or masks come and go between predictions.
        """
        if len(image_ids) != len(predictions):
            raise InputError(f"{len(image_ids)} image ids but {len(predictions)} predictions")
        for image_id, prediction in zip(image_ids, predictions):
            if int(image_id) in self._seen:
                raise InputError(f"image {image_id} was already scored; each image counts once")
            self._seen.add(int(image_id))
            with_masks = "masks" in prediction
            if self._with_masks is not None and with_masks != self._with_masks:
                raise InputError("some predictions carry masks and others do not; score one model at a time")
            self._with_masks = with_masks
            self.results.extend(to_coco_results(image_id, prediction, self.score_threshold, self.label_to_category))
            self.image_ids.append(int(image_id))

    def compute(self) -> dict[str, float]:
        """``{"bbox_map50": ...}`` plus ``"segm_map50"`` when the model gave masks (the suffix follows ``iou``).

        Raises:
            InputError: nothing was added, or no ground-truth object in the images seen.
        """
        if not self.image_ids:
            raise InputError("no predictions were added to the scorer")
        suffix = f"map{round(self.iou * 100)}"
        scores = {f"bbox_{suffix}": coco_map(self.coco, self.results, "bbox", self.iou, self.image_ids)}
        if self._with_masks:
            scores[f"segm_{suffix}"] = coco_map(self.coco, self.results, "segm", self.iou, self.image_ids)
        logger.info("detection over %d images: %s", len(set(self.image_ids)), scores)
        return scores
