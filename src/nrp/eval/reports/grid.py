"""Image grids after the paper's Figure 6: one example per row, e.g. clean | adversarial | purified."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.io.write import to_uint8

MARGIN = 8
"""Pixels of white around the whole grid."""
GAP = 8
"""Pixels between neighbouring cells (tile plus caption), across and down."""
CAPTION_HEIGHT = 20
"""Height of the caption band under every tile."""
TITLE_HEIGHT = 20
"""Height of the column-title band at the top, present only when column titles are given."""
ROW_TITLE_HEIGHT = 18
"""Height of the band above each row holding its title (e.g. the true label), present only when row titles are given."""
FONT_SIZE = 13
RESAMPLE = Image.Resampling.BICUBIC
"""Filter used to bring every image to the tile size (images already that size are copied exactly)."""

CORRECT, WRONG = "✓", "✗"
_MARK_COLOURS = {CORRECT: (0, 140, 0), WRONG: (200, 0, 0)}
_MARK_WIDTH = 12  # Pillow's default font has no glyphs for the marks, so they are drawn as lines


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        return ImageFont.load_default()


def grid_size(rows: int, columns: int, tile_size: tuple[int, int], titled: bool,
              row_titled: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of a grid of ``rows`` x ``columns`` tiles of ``tile_size`` = (height, width)."""
    tile_h, tile_w = tile_size
    width = 2 * MARGIN + columns * tile_w + (columns - 1) * GAP
    row_h = tile_h + CAPTION_HEIGHT + (ROW_TITLE_HEIGHT if row_titled else 0)
    height = 2 * MARGIN + (TITLE_HEIGHT if titled else 0) + rows * row_h + (rows - 1) * GAP
    return width, height


def tile_origin(row: int, column: int, tile_size: tuple[int, int], titled: bool,
                row_titled: bool = False) -> tuple[int, int]:
    """(x, y) of the top-left pixel of tile (``row``, ``column``); a row's title band lies just above its tiles."""
    tile_h, tile_w = tile_size
    band = ROW_TITLE_HEIGHT if row_titled else 0
    x = MARGIN + column * (tile_w + GAP)
    y = MARGIN + (TITLE_HEIGHT if titled else 0) + row * (tile_h + CAPTION_HEIGHT + band + GAP) + band
    return x, y


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _draw_mark(draw: ImageDraw.ImageDraw, mark: str, x: int, y: int, size: int) -> None:
    colour = _MARK_COLOURS[mark]
    if mark == CORRECT:
        draw.line([(x, y + size // 2), (x + size // 3, y + size - 1), (x + size - 1, y)], fill=colour, width=2)
    else:
        draw.line([(x, y), (x + size - 1, y + size - 1)], fill=colour, width=2)
        draw.line([(x, y + size - 1), (x + size - 1, y)], fill=colour, width=2)


def _draw_caption(draw: ImageDraw.ImageDraw, caption: str, x: int, y: int, width: int, font) -> None:
    """Caption left-aligned in the band at (x, y); a trailing ✓/✗ is drawn as a green tick / red cross."""
    caption = caption.rstrip()
    mark = caption[-1] if caption[-1:] in _MARK_COLOURS else None
    text = caption[:-1].rstrip() if mark else caption
    room = width - (_MARK_WIDTH + 4 if mark else 0)
    text = _fit(draw, text, font, room) if text else ""
    draw.text((x, y + 3), text, fill=(0, 0, 0), font=font)
    if mark:
        text_end = x + (int(draw.textlength(text, font=font)) + 4 if text else 0)
        _draw_mark(draw, mark, text_end, y + (CAPTION_HEIGHT - _MARK_WIDTH) // 2, _MARK_WIDTH)


def image_grid(
    rows_of_images: Sequence[Sequence[torch.Tensor]],
    captions: Sequence[Sequence[str]],
    path: str | os.PathLike,
    *,
    column_titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    tile_size: int | tuple[int, int] | None = None,
) -> Path:
    """Write a captioned grid of images as a PNG, atomically; one example per row (the paper's Figure 6).

    Every image is resized (bicubic, :data:`RESAMPLE`) to the tile size; each tile gets its caption in a
    band beneath it, e.g. the predicted label ``"tabby cat ✓"`` (a trailing ✓ or ✗ is drawn as a green tick
    or red cross). The layout is given by :func:`grid_size` and :func:`tile_origin`.

    Args:
        rows_of_images: rows of images, each (3, H, W) float in [0, 1]; every row has the same length.
        captions: one string per image, same shape as ``rows_of_images``.
        path: output ``.png`` file; parent folders are created.
        column_titles: one title per column (e.g. ``["clean", "adversarial", "purified"]``), or None.
        row_titles: one title per row, written above it across the row (e.g. ``"true label: tabby cat"``), or None.
        tile_size: tile side, or (height, width); None for the size of the first image.

    Returns:
        ``path``.

    Raises:
        InputError: empty or ragged rows, captions or titles of the wrong shape, a bad tile size, an image
            that is not (3, H, W) or contains NaN, or a suffix other than .png.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"image grids are written as PNG; got {path}")
    if not rows_of_images or not rows_of_images[0]:
        raise InputError("image_grid needs at least one row with at least one image")
    columns = len(rows_of_images[0])
    shape = [len(r) for r in rows_of_images]
    if any(n != columns for n in shape):
        raise InputError(f"every row needs the same number of images; got rows of {shape}")
    if len(captions) != len(rows_of_images) or any(len(c) != columns for c in captions):
        raise InputError(f"captions must match the images' shape {len(shape)} x {columns}, "
                         f"got {[len(c) for c in captions]}")
    if column_titles is not None and len(column_titles) != columns:
        raise InputError(f"{len(column_titles)} column titles for {columns} columns")
    if row_titles is not None and len(row_titles) != len(rows_of_images):
        raise InputError(f"{len(row_titles)} row titles for {len(rows_of_images)} rows")
    tiles = [[Image.fromarray(to_uint8(image)) for image in row] for row in rows_of_images]
    if tile_size is None:
        tile_size = (tiles[0][0].height, tiles[0][0].width)
    elif isinstance(tile_size, int):
        tile_size = (tile_size, tile_size)
    if len(tile_size) != 2 or min(tile_size) < 1:
        raise InputError(f"tile_size must be a positive int or (height, width), got {tile_size!r}")
    tile_h, tile_w = tile_size
    titled, row_titled = column_titles is not None, row_titles is not None

    canvas = Image.new("RGB", grid_size(len(tiles), columns, tile_size, titled, row_titled), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(FONT_SIZE)
    for c, title in enumerate(column_titles or []):
        x, _ = tile_origin(0, c, tile_size, titled)
        title = _fit(draw, title, font, tile_w)
        offset = (tile_w - int(draw.textlength(title, font=font))) // 2
        draw.text((x + max(offset, 0), MARGIN + 3), title, fill=(0, 0, 0), font=font)
    row_width = columns * tile_w + (columns - 1) * GAP
    for r, title in enumerate(row_titles or []):
        x, y = tile_origin(r, 0, tile_size, titled, row_titled)
        draw.text((x, y - ROW_TITLE_HEIGHT + 2), _fit(draw, title, font, row_width), fill=(0, 0, 0), font=font)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile.size != (tile_w, tile_h):
                tile = tile.resize((tile_w, tile_h), RESAMPLE)
            x, y = tile_origin(r, c, tile_size, titled, row_titled)
            canvas.paste(tile, (x, y))
            _draw_caption(draw, captions[r][c], x, y + tile_h, tile_w, font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
