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


def test_row_titles_sit_in_a_band_above_each_row(tmp_path: Path) -> None:
    from nrp.eval.reports.grid import ROW_TITLE_HEIGHT, grid_size, tile_origin
    rows = images(2, 2, 16, 20)
    path = image_grid(rows, [["a", "b"], ["c", "d"]], tmp_path / "g.png", row_titles=["true label: cat", "true label: dog"])
    canvas = np.asarray(Image.open(path).convert("RGB"))
    assert canvas.shape[:2][::-1] == grid_size(2, 2, (16, 20), titled=False, row_titled=True)
    for r in range(2):
        x, y = tile_origin(r, 1, (16, 20), titled=False, row_titled=True)
        assert np.array_equal(canvas[y : y + 16, x : x + 20], to_uint8(rows[r][1]))  # tiles exactly in place
        band = canvas[y - ROW_TITLE_HEIGHT : y, MARGIN : MARGIN + 2 * 20 + GAP]
        assert (band < 128).any()  # the title is drawn in its band
    with pytest.raises(InputError, match="1 row titles for 2 rows"):
        image_grid(rows, [["a", "b"], ["c", "d"]], tmp_path / "h.png", row_titles=["one"])


def test_examples_show_restored_and_failed_photos_by_the_stated_rule() -> None:
    from nrp.eval.reports.examples import choose_examples
    truth = [0, 1, 2, 3, 4, 5, 6, 7]
    attacked = [9, 9, 9, 9, 9, 9, 6, 9]  # photo 6 is not fooled
    defended = [9, 9, 9, 3, 4, 9, 6, 7]  # restored: 3, 4, 7; failed: 0, 1, 2, 5
    choice = choose_examples(truth, attacked, defended, 6, "NRP")
    assert choice.indices == [3, 4, 7, 0, 1, 2] and (choice.restored, choice.failed) == (3, 3)
    assert "first 3 photos (in file order) that the attack fools and NRP restores" in choice.rule
    assert "3 restored and 4 not restored of 7 fooled" in choice.rule
    # one restored photo only: the failures fill the rest; too few fooled photos: unfooled ones fill the grid
    assert choose_examples(truth, attacked, [9, 9, 9, 3, 9, 9, 6, 9], 4, "NRP").indices == [3, 0, 1, 2]
    few = choose_examples([0, 1, 2], [9, 1, 2], [0, 1, 2], 3, "NRP")
    assert few.indices == [0, 1, 2] and few.rule.endswith("then 2 the attack does not fool")
