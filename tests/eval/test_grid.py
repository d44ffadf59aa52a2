"""Image grids of nrp.eval.reports.grid: layout size, exact tile pixels, caption marks, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.errors import InputError
from nrp.eval.reports import image_grid
from nrp.eval.reports.grid import CAPTION_HEIGHT, GAP, MARGIN, RESAMPLE, TITLE_HEIGHT
from nrp.io.write import to_uint8


def images(rows: int, columns: int, height: int, width: int) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [[torch.rand(3, height, width, generator=generator) for _ in range(columns)] for _ in range(rows)]


def tile(canvas: np.ndarray, row: int, column: int, height: int, width: int, titled: bool) -> np.ndarray:
    top = MARGIN + (TITLE_HEIGHT if titled else 0) + row * (height + CAPTION_HEIGHT + GAP)
    left = MARGIN + column * (width + GAP)
    return canvas[top : top + height, left : left + width]


def caption_band(canvas: np.ndarray, row: int, column: int, height: int, width: int) -> np.ndarray:
    top = MARGIN + row * (height + CAPTION_HEIGHT + GAP) + height
    left = MARGIN + column * (width + GAP)
    return canvas[top : top + CAPTION_HEIGHT, left : left + width]


def test_grid_size_and_exact_tiles(tmp_path: Path) -> None:
    grid = images(2, 3, 16, 20)
    captions = [["cat ✓", "dog ✗", "cat ✓"], ["car", "", "a very long label that cannot fit in a tile"]]
    path = image_grid(grid, captions, tmp_path / "grid.png")
    assert path == tmp_path / "grid.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (2 * MARGIN + 3 * 20 + 2 * GAP, 2 * MARGIN + 2 * (16 + CAPTION_HEIGHT) + GAP)
        canvas = np.asarray(image)
    for r in range(2):
        for c in range(3):
            assert np.array_equal(tile(canvas, r, c, 16, 20, titled=False), to_uint8(grid[r][c]))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_tiles_are_resized_to_the_tile_size(tmp_path: Path) -> None:
    grid = [[torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(1)), torch.rand(3, 12, 12)]]
    path = image_grid(grid, [["a", "b"]], tmp_path / "grid.png", tile_size=(24, 32), column_titles=["clean", "adv"])
    with Image.open(path) as image:
        assert image.size == (2 * MARGIN + 2 * 32 + GAP, 2 * MARGIN + TITLE_HEIGHT + 24 + CAPTION_HEIGHT)
        canvas = np.asarray(image)
    for c in range(2):
        expected = np.asarray(Image.fromarray(to_uint8(grid[0][c])).resize((32, 24), RESAMPLE))
        assert np.array_equal(tile(canvas, 0, c, 24, 32, titled=True), expected)
    title_band = canvas[MARGIN : MARGIN + TITLE_HEIGHT, MARGIN : MARGIN + 32]
    assert (title_band < 128).any()  # the title is drawn


def test_caption_marks_are_coloured(tmp_path: Path) -> None:
    grid = [[torch.ones(3, 16, 64)] * 3]
    path = image_grid(grid, [["cat ✓", "cat ✗", "cat"]], tmp_path / "grid.png")
    canvas = np.asarray(Image.open(path)).astype(int)
    red, green, blue = (caption_band(canvas, 0, c, 16, 64) for c in range(3))

    def greenish(band):
        return ((band[..., 1] > 100) & (band[..., 0] < 80) & (band[..., 2] < 80)).sum()

    def reddish(band):
        return ((band[..., 0] > 150) & (band[..., 1] < 80) & (band[..., 2] < 80)).sum()

    assert greenish(red) > 5 and reddish(red) == 0  # "✓" -> green tick
    assert reddish(green) > 5 and greenish(green) == 0  # "✗" -> red cross
    assert reddish(blue) == 0 and greenish(blue) == 0 and (blue < 100).all(axis=-1).any()  # plain black text


@pytest.mark.parametrize(
    ("rows", "captions", "kwargs", "message"),
    [
        ([], [], {}, "at least one row"),
        ([[torch.zeros(3, 4, 4)], [torch.zeros(3, 4, 4)] * 2], [["a"], ["a", "b"]], {}, "same number of images"),
        ([[torch.zeros(3, 4, 4)] * 2], [["a"]], {}, "captions must match"),
        ([[torch.zeros(3, 4, 4)] * 2], [["a", "b"]], {"column_titles": ["x"]}, "1 column titles for 2 columns"),
        ([[torch.zeros(3, 4, 4)]], [["a"]], {"tile_size": 0}, "tile_size"),
        ([[torch.zeros(1, 4, 4)]], [["a"]], {}, r"\(3, H, W\)"),
    ],
)
def test_image_grid_rejects_bad_input(tmp_path: Path, rows, captions, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        image_grid(rows, captions, tmp_path / "grid.png", **kwargs)
    assert not any(tmp_path.iterdir())


def test_image_grid_writes_png_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="as PNG"):
        image_grid([[torch.zeros(3, 4, 4)]], [["a"]], tmp_path / "grid.jpg")
