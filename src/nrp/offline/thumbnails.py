"""Whether two image files hold the same picture: the recipe's test for overlapping and duplicate photos."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

THUMBNAIL_SIZE = 32
# Mean absolute difference of the grey-scale thumbnails (0-255) below which two images are the same picture.
SAME_PICTURE_GREY_LEVELS = 2.0


def thumbnail(image: Image.Image) -> np.ndarray:
    """The image as a 32x32 grey-scale float array (0-255), the form in which pictures are compared."""
    return np.asarray(image.convert("L").resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.BILINEAR), dtype=np.float32)


def thumbnail_of(path: str | os.PathLike) -> np.ndarray:
    """:func:`thumbnail` of an image file."""
    with Image.open(path) as image:
        return thumbnail(image)


def same_picture(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two thumbnails show the same picture (a re-encoded or resized copy counts as the same)."""
    return float(np.abs(first - second).mean()) < SAME_PICTURE_GREY_LEVELS
