"""Fixtures of the evaluation tests: a labelled image folder whose classes a tiny model always gets right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

# Image k is a flat grey of level LEVELS[label]; BrightnessClassifier tells the levels apart from the mean, and
# no attack within eps 16/255 can move a mean across the midpoints between levels (0.2 away).
LEVELS = (0.1, 0.5, 0.9)
LABELS = (0, 1, 2, 0, 2, 1, 1)


class BrightnessClassifier(nn.Module):
    """Logits ``-|mean(x) - level_k| * 50`` over 1000 classes (the first three are the grey levels)."""

    def __init__(self) -> None:
        super().__init__()
        centres = torch.full((1000,), 10.0)
        centres[: len(LEVELS)] = torch.tensor(LEVELS)
        self.register_buffer("centres", centres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x.mean(dim=(1, 2, 3))[:, None] - self.centres).abs() * 50


class ConstantClassifier(nn.Module):
    """Always class 0, most confidently, then 1, 2, ... (a differentiable constant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.arange(1000, dtype=x.dtype)[None].expand(x.shape[0], -1) + 0 * x.sum(dim=(1, 2, 3))[:, None]


@pytest.fixture
def grey_images(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of flat grey 40x48 PNG images (with a little texture) and its labels CSV."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,label"]
    for index, label in enumerate(LABELS):
        pixels = np.clip(LEVELS[label] * 255 + rng.integers(-3, 4, (40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
        rows.append(f"img{index}.png,{label}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels


@pytest.fixture
def tiny_models() -> dict[str, nn.Module]:
    return {"right": BrightnessClassifier(), "constant": ConstantClassifier()}


# Flat images at two grey levels, each 8/255 below the midpoint to the next class centre (16/255 above it), so a
# white-box step of eps = 16/255 lands every image exactly on the next class's centre, a 3.2/255 one on none;
# two-bit depth reduction (levels k/3) maps every such image back to its clean level exactly.
BOUNDARY_LEVELS = (85, 170)  # 1/3 and 2/3: classes 0 and 2
BOUNDARY_LABELS = (0, 2, 0, 2, 2, 0)
BOUNDARY_CENTRES = (85 / 255, 101 / 255, 170 / 255, 186 / 255)


class BoundaryClassifier(nn.Module):
    """Logits ``-1000 (mean(x) - c_k)^2``: classes 0-3 centred at 85, 101, 170, 186 (/255), the rest far away.

    Clean images (means 85/255, 170/255) are classes 0 and 2; the loss gradient of each points up, towards
    classes 1 and 3, uniformly over pixels, so FGSM at eps 16 moves every mean onto the next centre: success 1.
    """

    def __init__(self) -> None:
        super().__init__()
        centres = torch.full((1000,), 10.0)
        centres[: len(BOUNDARY_CENTRES)] = torch.tensor(BOUNDARY_CENTRES)
        self.register_buffer("centres", centres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -1000 * (x.mean(dim=(1, 2, 3))[:, None] - self.centres) ** 2


@pytest.fixture
def boundary_images(tmp_path: Path) -> tuple[Path, Path]:
    """Flat 24x24 PNGs at the grey levels of :data:`BOUNDARY_LABELS`, and their labels CSV."""
    folder = tmp_path / "boundary"
    folder.mkdir()
    rows = ["filename,label"]
    for index, label in enumerate(BOUNDARY_LABELS):
        level = BOUNDARY_LEVELS[label // 2]
        Image.fromarray(np.full((24, 24, 3), level, dtype=np.uint8)).save(folder / f"img{index}.png")
        rows.append(f"img{index}.png,{label}")
    labels = tmp_path / "boundary_labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels
