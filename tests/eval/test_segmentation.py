"""Semantic segmentation scoring: confusion matrix, pixel accuracy and mIoU against torchmetrics; segment and models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from nrp.errors import InputError, WeightsUnavailableError
from nrp.eval.coco import MaskFolderDataset
from nrp.eval.segmentation import (
    SegmentationScorer,
    TorchvisionSegmenter,
    build_segmenter,
    class_iou,
    confusion_matrix,
    segment,
)


def _random_labels(generator: torch.Generator, shape: tuple[int, ...], classes: int, ignore_share: float = 0.2):
    prediction = torch.randint(0, classes, shape, generator=generator)
    target = torch.randint(0, classes, shape, generator=generator)
    # Make predictions right more often than chance, and mark some target pixels "ignore".
    right = torch.rand(shape, generator=generator) < 0.4
    prediction[right] = target[right]
    target[torch.rand(shape, generator=generator) < ignore_share] = 255
    return prediction, target


@pytest.mark.parametrize("classes", [2, 5, 21])
def test_streamed_scores_equal_torchmetrics_with_ignore_index(classes: int):
    generator = torch.Generator().manual_seed(classes)
    scorer = SegmentationScorer(classes, ignore_index=255)
    accuracy = MulticlassAccuracy(classes, average="micro", ignore_index=255)
    jaccard = MulticlassJaccardIndex(classes, average="macro", ignore_index=255)
    for _ in range(3):
        prediction, target = _random_labels(generator, (2, 9, 11), classes)
        scorer.update(prediction, target)
        accuracy.update(prediction, target)
        jaccard.update(prediction, target)
    scores = scorer.compute()
    assert scores["pixel_accuracy"] == pytest.approx(float(accuracy.compute()), abs=1e-6)
    assert scores["mean_iou"] == pytest.approx(float(jaccard.compute()), abs=1e-6)
    assert 0.3 < scores["pixel_accuracy"] < 0.9  # neither trivial nor hopeless


def test_classes_absent_from_targets_and_predictions_are_left_out_of_the_mean_as_torchmetrics_does():
    # Five classes, but only 0, 1 and 3 ever occur: IoU of 2 and 4 is 0/0 and must not pull the mean down.
    generator = torch.Generator().manual_seed(0)
    prediction, target = _random_labels(generator, (1, 16, 16), 2)
    prediction[prediction == 1] = 3
    prediction[0, 0, 0], target[0, 0, 1] = 1, 1
    scorer = SegmentationScorer(5)
    scorer.update(prediction, target)
    iou = class_iou(scorer.confusion)
    assert iou[[2, 4]].isnan().all() and not iou[[0, 1, 3]].isnan().any()
    expected = float(MulticlassJaccardIndex(5, average="macro", ignore_index=255)(prediction, target))
    assert scorer.compute()["mean_iou"] == pytest.approx(expected, abs=1e-6)
    assert scorer.compute()["mean_iou"] == pytest.approx(float(iou[[0, 1, 3]].mean()))


def test_known_confusion_matrix_and_scores():
    prediction = torch.tensor([[[0, 1, 1], [2, 2, 0]]])
    target = torch.tensor([[[0, 1, 2], [2, 255, 1]]])
    confusion = confusion_matrix(prediction, target, 3)
    assert confusion.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    scorer = SegmentationScorer(3)
    scorer.update(prediction, target)
    # 3 of 5 scored pixels right; IoU 1/2, 1/3, 1/2.
    assert scorer.compute() == {"pixel_accuracy": pytest.approx(0.6), "mean_iou": pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)}


def test_ignore_index_none_scores_every_pixel():
    scorer = SegmentationScorer(2, ignore_index=None)
    scorer.update(torch.tensor([[0, 1]]), torch.tensor([[0, 0]]))
    assert scorer.compute()["pixel_accuracy"] == 0.5


@pytest.mark.parametrize(
    "prediction, target, message",
    [
        (torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long), "differ in shape"),
        (torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), "integer class indices"),
        (torch.full((1, 2, 2), 3), torch.zeros(1, 2, 2, dtype=torch.long), r"prediction holds values in \[3, 3\]"),
        (torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7), r"expected \[0, 3\) or 255"),
    ],
)
def test_bad_labels_are_refused_in_one_line(prediction, target, message):
    with pytest.raises(InputError, match=message) as caught:
        SegmentationScorer(3).update(prediction, target)
    assert "\n" not in str(caught.value)


def test_scorer_refuses_an_ignore_index_that_is_a_class_and_empty_scoring():
    with pytest.raises(InputError, match="ignore_index 2 is a class index"):
        SegmentationScorer(3, ignore_index=2)
    scorer = SegmentationScorer(3)
    scorer.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 255))
    with pytest.raises(InputError, match="no labelled pixels"):
        scorer.compute()


class _HalfResolution(nn.Module):
    """Logits at half the input size, class 1 where the red channel is bright."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        red = nn.functional.avg_pool2d(images[:, :1], 2)
        return torch.cat([0.5 - red, red - 0.5], dim=1)


def test_segment_resizes_logits_to_the_input_and_restores_the_mode():
    images = torch.zeros(2, 3, 8, 6)
    images[0, 0, :4] = 1.0
    model = _HalfResolution().train()
    labels = segment(model, images)
    assert labels.shape == (2, 8, 6) and labels.dtype == torch.int64
    assert labels[0, :4].eq(1).all() and labels[0, 4:].eq(0).all() and labels[1].eq(0).all()
    assert model.training
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        segment(model, images * 255 + 1)


def test_torchvision_segmenter_normalises_inside_and_takes_out():
    torch.manual_seed(0)
    raw = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=3, aux_loss=True)
    raw.eval()
    wrapped = TorchvisionSegmenter(raw)
    images = torch.rand(1, 3, 32, 32)
    normalised = torchvision.transforms.functional.normalize(images, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        assert torch.allclose(wrapped(images), raw(normalised)["out"], atol=1e-5)
    # segment also accepts a raw torchvision model's dict.
    assert torch.equal(segment(raw, normalised.clamp(0, 1)), raw(normalised.clamp(0, 1))["out"].argmax(1))


def _palette_png(path: Path, labels: np.ndarray) -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([v for i in range(256) for v in (i, i, i)])
    image.save(path)


def test_random_fcn_through_mask_folder_and_scorer_equals_torchmetrics(tmp_path: Path):
    rng = np.random.default_rng(0)
    for folder in ("JPEGImages", "SegmentationClass"):
        (tmp_path / folder).mkdir()
    for stem in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "JPEGImages" / f"{stem}.png")
        _palette_png(tmp_path / "SegmentationClass" / f"{stem}.png", rng.choice([0, 1, 2, 255], size=(64, 64)))
    data = MaskFolderDataset(tmp_path / "JPEGImages", tmp_path / "SegmentationClass")
    torch.manual_seed(0)
    model = build_segmenter("fcn", pretrained=False, num_classes=3, aux_loss=False)
    scorer = SegmentationScorer(num_classes=3)
    accuracy = MulticlassAccuracy(3, average="micro", ignore_index=255)
    jaccard = MulticlassJaccardIndex(3, average="macro", ignore_index=255)
    for _, images, masks in data.batches(batch_size=2):
        labels = segment(model, images)
        assert labels.shape == masks.shape and 0 <= int(labels.min()) and int(labels.max()) < 3
        scorer.update(labels, masks)
        accuracy.update(labels, masks)
        jaccard.update(labels, masks)
    scores = scorer.compute()
    assert int(scorer.confusion.sum()) == sum(int((m != 255).sum()) for _, _, m in data.batches(3))
    assert scores["pixel_accuracy"] == pytest.approx(float(accuracy.compute()), abs=1e-6)
    assert scores["mean_iou"] == pytest.approx(float(jaccard.compute()), abs=1e-6)


def test_build_segmenter_names_missing_weights_and_weights_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InputError, match="unknown segmenter 'segnet'.*fcn, deeplabv3"):
        build_segmenter("segnet")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(WeightsUnavailableError, match="deeplabv3_resnet50") as caught:
        build_segmenter("deeplabv3", download=False)
    assert "\n" not in str(caught.value)
    # A file saved with the auxiliary head (as torchvision's own weights are) loads without saying so.
    torch.manual_seed(0)
    name = "deeplabv3_mobilenet_v3_large"
    source = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    torch.save(source.state_dict(), tmp_path / "seg.pth")
    loaded = build_segmenter(name, weights=tmp_path / "seg.pth")
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in source.state_dict().items())
