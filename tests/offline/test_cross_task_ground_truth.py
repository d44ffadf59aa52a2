"""The cross-task demo's ground truth: the networks' own clean output, rebuilt whenever what shaped it changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from nrp.offline.cross_task_demo import IMAGE_SIZE, build_ground_truth
from nrp.eval.coco import read_mask

BOX = [40.0, 60.0, 200.0, 220.0]  # xyxy in the 320x320 photo


class BrightnessDetector(nn.Module):
    """Finds one "person" (torchvision label 1) in bright photos, scoring ``threshold``-dependent; counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.threshold = nn.Parameter(torch.tensor(0.5), requires_grad=False)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        self.calls += 1
        score = 0.9 if float(x.mean()) > float(self.threshold) else 0.1
        return [{"boxes": torch.tensor([BOX]), "labels": torch.tensor([1]), "scores": torch.tensor([score])}]


class RedSegmenter(nn.Module):
    """Two-class scores whose object channel is the red channel: the mask is where red > 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([1 - x[:, :1], x[:, :1]], dim=1)


def photos(folder: Path) -> list[Path]:
    """Bright, dark, bright photos of another size than 320 (so resizing happens), red on their left half."""
    folder.mkdir()
    paths = []
    for index, level in enumerate((220, 30, 200)):
        pixels = np.full((240, 360, 3), level, dtype=np.uint8)
        pixels[:, :180, 0], pixels[:, 180:, 0] = 255, 0
        path = folder / f"p{index}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_ground_truth_keeps_photos_with_a_detection_and_writes_their_boxes_and_masks(tmp_path: Path) -> None:
    candidates = photos(tmp_path / "photos")
    data = build_ground_truth(candidates, tmp_path / "data", BrightnessDetector(), RedSegmenter(), count=2)
    truth = json.loads(data.annotations.read_text())
    assert [image["source"] for image in truth["images"]] == [str(candidates[0]), str(candidates[2])]
    assert [a["bbox"] for a in truth["annotations"]] == [[40.0, 60.0, 160.0, 160.0]] * 2  # xywh
    assert {a["category_id"] for a in truth["annotations"]} == {1}
    stems = sorted(path.stem for path in data.images.glob("*.png"))
    assert stems == ["001_p0", "002_p2"] == sorted(path.stem for path in data.masks.glob("*.png"))
    mask = read_mask(data.masks / "001_p0.png")
    assert tuple(mask.shape) == (IMAGE_SIZE, IMAGE_SIZE)
    assert bool((mask[:, :150] == 1).all()) and bool((mask[:, 170:] == 0).all())  # red left half, resized


def test_ground_truth_is_reused_only_while_photos_count_and_networks_are_unchanged(tmp_path: Path) -> None:
    candidates = photos(tmp_path / "photos")
    detector, segmenter, folder = BrightnessDetector(), RedSegmenter(), tmp_path / "data"
    build_ground_truth(candidates, folder, detector, segmenter, count=2)
    calls = detector.calls
    build_ground_truth(candidates, folder, detector, segmenter, count=2)
    assert detector.calls == calls  # same photos, count and networks: the layout is reused as it is

    detector.threshold.fill_(0.7)  # another detector (its tensors changed): only p0 is bright enough now
    data = build_ground_truth(candidates, folder, detector, segmenter, count=2)
    assert detector.calls > calls
    assert [image["source"] for image in json.loads(data.annotations.read_text())["images"]] == [str(candidates[0])]
    assert sorted(path.stem for path in data.images.glob("*.png")) == ["001_p0"]  # p2's files are gone

    calls = detector.calls
    data = build_ground_truth(candidates[1:], folder, detector, segmenter, count=2)  # other candidate photos
    assert detector.calls > calls
    assert json.loads(data.annotations.read_text())["images"] == []
    assert not list(data.images.glob("*.png")) and not list(data.masks.glob("*.png"))
