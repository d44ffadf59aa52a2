"""COCO mAP@0.5 scoring of detectors: known answers, pycocotools' own summary, torchmetrics, a random Mask R-CNN."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchmetrics.detection import MeanAveragePrecision

from nrp.errors import CheckpointError, InputError, WeightsUnavailableError
from nrp.eval.coco import TORCHVISION_COCO_LABELS, CocoDataset, load_coco
from nrp.eval.detection import DetectionScorer, build_detector, coco_map, detect, to_coco_results

SIZE = 32
# pycocotools' mask decoding trips a NumPy 2 deprecation warning of its own.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _coco(tmp_path: Path, objects: dict[int, list[tuple[int, list[float]]]], categories=(1, 2, 3)) -> COCO:
    """Ground truth: ``{image_id: [(category_id, [x, y, w, h]), ...]}`` on SIZE x SIZE images, box-shaped masks."""
    images = [{"id": i, "file_name": f"{i}.png", "height": SIZE, "width": SIZE} for i in objects]
    annotations = []
    for image_id, boxes in objects.items():
        for category_id, (x, y, w, h) in boxes:
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id, "bbox": [x, y, w, h],
                 "segmentation": [polygon], "area": w * h, "iscrowd": 0}
            )
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": c, "name": f"class{c}"} for c in categories],
    }))
    return load_coco(path)


def _result(image_id: int, category_id: int, box: list[float], score: float, coco: COCO | None = None) -> dict:
    result = {"image_id": image_id, "category_id": category_id, "bbox": box, "score": score}
    if coco is not None:  # the mask of the box, rasterised as pycocotools rasterises the ground-truth polygons
        x, y, w, h = box
        rle = mask_utils.merge(mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], SIZE, SIZE))
        result["segmentation"] = rle
    return result


@pytest.fixture
def two_images(tmp_path: Path) -> COCO:
    return _coco(tmp_path, {1: [(1, [2, 2, 10, 10]), (2, [15, 15, 12, 8])], 2: [(1, [0, 0, 20, 30])]})


def test_perfect_predictions_score_one_for_boxes_and_masks(two_images: COCO):
    results = [_result(a["image_id"], a["category_id"], a["bbox"], 0.9, two_images) for a in two_images.dataset["annotations"]]
    assert coco_map(two_images, results, "bbox") == pytest.approx(1.0)
    assert coco_map(two_images, results, "segm") == pytest.approx(1.0)


def test_one_of_two_objects_found_gives_51_of_101(tmp_path: Path):
    # One category, two objects, one exact detection: precision 1 up to recall 0.5, nothing beyond. COCO's
    # 101-point interpolation counts recall points 0.00, 0.01, ..., 0.50: 51 of them.
    coco = _coco(tmp_path, {1: [(1, [0, 0, 10, 10]), (1, [20, 20, 10, 10])]}, categories=(1,))
    assert coco_map(coco, [_result(1, 1, [0, 0, 10, 10], 0.8)]) == pytest.approx(51 / 101)


def test_a_box_with_iou_04_is_a_miss_at_05_and_a_hit_at_03(tmp_path: Path):
    coco = _coco(tmp_path, {1: [(1, [0, 0, 10, 10])]}, categories=(1,))
    overlapping = [_result(1, 1, [0, 0, 10, 4], 0.8)]  # intersection 40, union 100
    assert coco_map(coco, overlapping, iou=0.5) == 0.0
    assert coco_map(coco, overlapping, iou=0.3) == pytest.approx(1.0)


def test_a_higher_scored_false_positive_halves_precision(tmp_path: Path):
    coco = _coco(tmp_path, {1: [(1, [0, 0, 10, 10])]}, categories=(1,))
    results = [_result(1, 1, [20, 20, 5, 5], 0.9), _result(1, 1, [0, 0, 10, 10], 0.5)]
    assert coco_map(coco, results) == pytest.approx(0.5)
    results[0]["category_id"] = 2  # the same box under a category without ground truth is not counted
    assert coco_map(coco, results) == pytest.approx(1.0)


def test_mean_is_over_categories_with_ground_truth(two_images: COCO):
    # Category 1 found perfectly on both images, category 2 missed, category 3 has no objects.
    results = [_result(1, 1, [2, 2, 10, 10], 0.9), _result(2, 1, [0, 0, 20, 30], 0.9)]
    assert coco_map(two_images, results) == pytest.approx(0.5)


def test_empty_results_score_zero(two_images: COCO):
    assert coco_map(two_images, [], "bbox") == 0.0
    assert coco_map(two_images, [], "segm") == 0.0


def test_image_ids_restrict_scoring_and_unseen_objects_count_as_missed(two_images: COCO):
    results = [_result(2, 1, [0, 0, 20, 30], 0.9)]
    assert coco_map(two_images, results, image_ids=[2]) == pytest.approx(1.0)
    # Over both images, category 1 has recall 1/2 and category 2 nothing.
    assert coco_map(two_images, results) == pytest.approx((51 / 101) / 2)


def _random_case(seed: int, images: int = 4, per_image: int = 6, categories: int = 3):
    """Random ground truth and predictions, boxes on a quarter-pixel grid (exact in float32) that often overlap."""
    rng = np.random.default_rng(seed)

    def boxes(count: int) -> np.ndarray:
        xy = rng.integers(0, 80, size=(count, 2)) / 4
        wh = rng.integers(8, 60, size=(count, 2)) / 4
        return np.concatenate([xy, np.minimum(xy + wh, SIZE)], axis=1)  # xyxy

    truth, predictions = [], []
    for _ in range(images):
        gt, gt_labels = boxes(per_image), rng.integers(1, categories + 1, per_image)
        # Half the predictions are jittered copies of ground-truth boxes (same label), half random boxes.
        copied = rng.integers(0, per_image, per_image)
        near = gt[copied] + rng.integers(-6, 7, size=(per_image, 4)) / 4
        pred = np.clip(np.concatenate([near, boxes(per_image)]), 0, SIZE)
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        labels = np.concatenate([gt_labels[copied], rng.integers(1, categories + 1, per_image)])
        truth.append({"boxes": torch.tensor(gt, dtype=torch.float32), "labels": torch.tensor(gt_labels)})
        predictions.append({"boxes": torch.tensor(pred, dtype=torch.float32), "labels": torch.tensor(labels),
                            "scores": torch.tensor(rng.permutation(2 * per_image) / (2 * per_image) + 0.01, dtype=torch.float32)})
    return truth, predictions


def _masks_of(boxes: torch.Tensor) -> torch.Tensor:
    masks = torch.zeros(len(boxes), SIZE, SIZE, dtype=torch.bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.round().long().tolist()):
        mask[y0:y1, x0:x1] = True
    return masks


def _ground_truth_coco(tmp_path: Path, truth: list[dict], with_masks: bool) -> COCO:
    images, annotations = [], []
    for image_id, target in enumerate(truth):
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": SIZE, "width": SIZE})
        masks = _masks_of(target["boxes"]) if with_masks else [None] * len(target["boxes"])
        for box, label, mask in zip(target["boxes"].tolist(), target["labels"].tolist(), masks):
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                          "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "iscrowd": 0}
            if mask is not None:
                rle = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
                annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            annotations.append(annotation)
    path = tmp_path / "random.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}))
    return load_coco(path)


def _torchmetrics_map(iou_type: str) -> MeanAveragePrecision:
    # torchmetrics' default recall points come from float32 torch.linspace, pycocotools' from float64
    # np.linspace: a recall such as 3/10 then falls on different sides of the 0.30 point and the two differ
    # by about 1e-3 (seed 1 below). Given pycocotools' own points, they agree to float32 precision.
    return MeanAveragePrecision(iou_type=iou_type, iou_thresholds=[0.5], rec_thresholds=np.linspace(0, 1, 101).tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_map_equals_torchmetrics(tmp_path: Path, seed: int):
    truth, predictions = _random_case(seed)
    coco = _ground_truth_coco(tmp_path, truth, with_masks=False)
    results = [r for image_id, p in enumerate(predictions) for r in to_coco_results(image_id, p)]
    metric = _torchmetrics_map("bbox")
    metric.update(predictions, truth)
    expected = float(metric.compute()["map"])
    assert 0.1 < expected < 0.9  # a case that tests something
    assert coco_map(coco, results, "bbox") == pytest.approx(expected, abs=1e-6)


def test_mask_map_equals_torchmetrics(tmp_path: Path):
    truth, predictions = _random_case(3)
    coco = _ground_truth_coco(tmp_path, truth, with_masks=True)
    for target in truth:
        target["masks"] = _masks_of(target["boxes"])
    for prediction in predictions:
        # Probabilities, as Mask R-CNN gives them: > 0.5 inside the box, < 0.5 outside.
        prediction["masks"] = (_masks_of(prediction["boxes"]).float() * 0.5 + 0.3).unsqueeze(1)
    results = [r for image_id, p in enumerate(predictions) for r in to_coco_results(image_id, p)]
    metric = _torchmetrics_map("segm")
    metric.update([{**p, "masks": p["masks"][:, 0] > 0.5} for p in predictions], truth)
    expected = float(metric.compute()["map"])
    assert 0.1 < expected < 0.9
    assert coco_map(coco, results, "segm") == pytest.approx(expected, abs=1e-6)


def test_map_at_05_equals_stats1_of_a_default_cocoeval_run(tmp_path: Path):
    truth, predictions = _random_case(4)
    coco = _ground_truth_coco(tmp_path, truth, with_masks=False)
    results = [r for image_id, p in enumerate(predictions) for r in to_coco_results(image_id, p)]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes([dict(r) for r in results]), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[1] > 0.05
    assert coco_map(coco, results) == pytest.approx(evaluator.stats[1], abs=1e-12)


def test_to_coco_results_converts_boxes_masks_labels_and_threshold():
    masks = torch.zeros(2, 1, 4, 5)
    masks[0, 0, 1:3, 2:4] = 0.9
    masks[0, 0, 0, 0] = 0.5  # not above the 0.5 threshold
    prediction = {"boxes": torch.tensor([[1.0, 2.0, 4.0, 3.5], [0.0, 0.0, 5.0, 4.0]]),
                  "labels": torch.tensor([3, 7]), "scores": torch.tensor([0.9, 0.2]), "masks": masks}
    results = to_coco_results(11, prediction)
    assert [r["bbox"] for r in results] == [[1.0, 2.0, 3.0, 1.5], [0.0, 0.0, 5.0, 4.0]]
    assert [r["category_id"] for r in results] == [3, 7] and results[0]["image_id"] == 11
    json.dumps(results)  # JSON-ready
    decoded = mask_utils.decode({**results[0]["segmentation"], "counts": results[0]["segmentation"]["counts"].encode()})
    assert np.array_equal(decoded, (masks[0, 0] > 0.5).numpy())
    assert [r["category_id"] for r in to_coco_results(11, prediction, score_threshold=0.5)] == [3]
    assert [r["category_id"] for r in to_coco_results(11, prediction, label_to_category={7: 70})] == [70]


def test_coco_map_refuses_bad_requests_in_one_line(two_images: COCO, tmp_path: Path):
    box_only = [_result(1, 1, [2, 2, 10, 10], 0.9)]
    for call, message in [
        (lambda: coco_map(two_images, box_only, "keypoints"), "iou_type"),
        (lambda: coco_map(two_images, box_only, iou=0.0), "iou must be"),
        (lambda: coco_map(two_images, box_only, image_ids=[9]), "image id 9"),
        (lambda: coco_map(two_images, [_result(9, 1, [0, 0, 1, 1], 0.5)]), "image id 9"),
        (lambda: coco_map(two_images, box_only, "segm"), "needs 'segmentation'"),
        (lambda: coco_map(_coco(tmp_path, {1: []}), box_only), "no ground-truth objects"),
    ]:
        with pytest.raises(InputError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_scorer_streams_batches_and_counts_images_without_detections(two_images: COCO):
    found = {"boxes": torch.tensor([[0.0, 0.0, 20.0, 30.0]]), "labels": torch.tensor([1]), "scores": torch.tensor([0.7])}
    nothing = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}
    scorer = DetectionScorer(two_images)
    scorer.update([2], [found])
    assert scorer.compute() == {"bbox_map50": pytest.approx(1.0)}
    scorer.update([1], [nothing])  # image 1's two objects are now missed
    assert scorer.compute()["bbox_map50"] == pytest.approx((51 / 101) / 2)
    with pytest.raises(InputError, match="image 2 was already scored"):
        scorer.update([2], [found])
    with pytest.raises(InputError, match="no predictions"):
        DetectionScorer(two_images).compute()


def _write_dataset(folder: Path, annotations: list[dict], categories: list[dict]) -> CocoDataset:
    (folder / "gt.json").write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.png", "height": 64, "width": 64} for i in (1, 2)],
        "annotations": annotations, "categories": categories,
    }))
    return CocoDataset(folder / "gt.json", folder / "images")


@pytest.fixture(scope="module")
def random_mask_rcnn_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[CocoDataset, dict, dict, bool]:
    """A random-weight Mask R-CNN run through ``DetectionScorer`` on two 64x64 images.

    Every image holds one full-image object of each of the 80 COCO categories, so whatever labels the random
    heads emit, some large boxes can match. Returns the dataset, the predictions by image id, the scores,
    and whether the detector was back in training mode afterwards.
    """
    folder = tmp_path_factory.mktemp("coco")
    (folder / "images").mkdir()
    rng = np.random.default_rng(0)
    for image_id in (1, 2):
        pixels = np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((16, 16, 1))).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{image_id}.png")
    categories = [{"id": i, "name": n} for i, n in enumerate(TORCHVISION_COCO_LABELS) if i and n != "N/A"]
    # Odd categories: the whole image as mask; even ones: its upper-right triangle, so masks and boxes differ.
    square, triangle = [0, 0, 64, 0, 64, 64, 0, 64], [0, 0, 64, 0, 64, 64]
    annotations = [
        {"id": 100 * image_id + c["id"], "image_id": image_id, "category_id": c["id"], "bbox": [0, 0, 64, 64],
         "segmentation": [square if c["id"] % 2 else triangle], "iscrowd": 0}
        for image_id in (1, 2) for c in categories
    ]
    dataset = _write_dataset(folder, annotations, categories)
    torch.manual_seed(0)
    detector = build_detector("maskrcnn", pretrained=False, min_size=64, max_size=96, box_score_thresh=0.0)
    detector.train()
    scorer = DetectionScorer(dataset)
    predictions = {}
    for image_ids, images in dataset.batches(batch_size=2):
        batch = detect(detector, images)
        scorer.update(image_ids, batch)
        predictions.update(zip(image_ids, batch))
    return dataset, predictions, scorer.compute(), detector.training


def test_random_mask_rcnn_scores_equal_torchmetrics_end_to_end(random_mask_rcnn_run):
    dataset, predictions, scores, training = random_mask_rcnn_run
    assert training  # detect restored the caller's mode
    assert all(p["masks"].shape[1:] == (1, 64, 64) and len(p["boxes"]) > 0 for p in predictions.values())
    assert set(scores) == {"bbox_map50", "segm_map50"}
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores.values())
    coco = dataset.coco
    truth = [
        {"boxes": torch.tensor([[0.0, 0.0, 64.0, 64.0]] * len(coco.getAnnIds(imgIds=i))),
         "labels": torch.tensor([coco.anns[a]["category_id"] for a in coco.getAnnIds(imgIds=i)]),
         "masks": torch.stack([torch.from_numpy(coco.annToMask(coco.anns[a])).bool() for a in coco.getAnnIds(imgIds=i)])}
        for i in dataset.image_ids
    ]
    for iou_type in ("bbox", "segm"):
        metric = _torchmetrics_map(iou_type)
        metric.update([{**predictions[i], "masks": predictions[i]["masks"][:, 0] > 0.5} for i in dataset.image_ids], truth)
        assert scores[f"{iou_type}_map50"] == pytest.approx(float(metric.compute()["map"]), abs=1e-6)
    assert scores["bbox_map50"] > 0  # full-image objects get found by some of the 100 random boxes per image


def test_a_detector_scored_against_its_own_detections_gets_one(random_mask_rcnn_run, tmp_path: Path):
    # Every detection becomes a ground-truth object: after torchvision's per-class NMS no two same-class boxes
    # overlap by more than 0.5, so each detection matches its own object and AP is exactly 1 in every class.
    # Detections whose mask is empty (it overlaps nothing) or whose label is one of COCO's unused ids ("N/A",
    # which random heads emit and no category matches) are dropped from both sides.
    dataset, predictions, _, _ = random_mask_rcnn_run
    unused = torch.tensor([i for i, name in enumerate(TORCHVISION_COCO_LABELS) if name == "N/A"])
    kept, annotations = {}, []
    for image_id, prediction in predictions.items():
        keep = (prediction["masks"][:, 0] > 0.5).flatten(1).any(1) & ~torch.isin(prediction["labels"], unused)
        kept[image_id] = {key: value[keep] for key, value in prediction.items()}
        for result in to_coco_results(image_id, kept[image_id]):
            annotations.append({**result, "id": len(annotations) + 1, "iscrowd": 0,
                                "area": result["bbox"][2] * result["bbox"][3]})
    (tmp_path / "images").symlink_to(dataset.image_folder)
    own = _write_dataset(tmp_path, annotations, [{"id": i, "name": n} for i, n in enumerate(TORCHVISION_COCO_LABELS) if i])
    scorer = DetectionScorer(own)
    scorer.update(list(kept), list(kept.values()))
    assert scorer.compute() == {"bbox_map50": pytest.approx(1.0), "segm_map50": pytest.approx(1.0)}


def test_detect_refuses_pixels_outside_the_unit_range():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        detect(torch.nn.Identity(), torch.full((1, 3, 4, 4), 255.0))
    with pytest.raises(InputError, match="3, H, W"):
        detect(torch.nn.Identity(), torch.zeros(1, 1, 4, 4))


def test_build_detector_names_and_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InputError, match="unknown detector 'yolo'.*maskrcnn, retinanet"):
        build_detector("yolo")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(WeightsUnavailableError, match="retinanet_resnet50_fpn_coco-eeacb38b.pth") as caught:
        build_detector("retinanet", download=False)
    assert "\n" not in str(caught.value) and "weights=FILE" in str(caught.value)


def test_build_detector_loads_a_weights_file(tmp_path: Path):
    torch.manual_seed(0)
    name = "ssdlite320_mobilenet_v3_large"
    source = build_detector(name, pretrained=False)
    torch.save(source.state_dict(), tmp_path / "ssd.pth")
    loaded = build_detector(name, weights=tmp_path / "ssd.pth")
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in source.state_dict().items())
    assert isinstance(loaded, torchvision.models.detection.ssd.SSD)
    torch.save({"head.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        build_detector(name, weights=tmp_path / "wrong.pth")


def test_build_detector_takes_pretrained_weights_from_the_hub_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    name = "ssdlite320_mobilenet_v3_large"
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.manual_seed(0)
    source = build_detector(name, pretrained=False)
    torch.save(source.state_dict(), cached)
    loaded = build_detector(name, download=False)
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in source.state_dict().items())
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable.*delete the file") as caught:
        build_detector(name, download=False)
    assert "\n" not in str(caught.value)
