"""Decoding image files to float tensors in [0, 1], and streaming them in same-size batches."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from nrp.errors import ImageDecodeError, InputError
from nrp.io.discover import ImageSource

logger = logging.getLogger(__name__)

# Modes holding one channel of integers up to 16 bits. PIL's convert("RGB") would clip these at 255,
# turning most of a 16-bit image white, so they are scaled by 65535 here instead.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

# What Pillow raises on bad input: OSError (truncated data, UnidentifiedImageError, missing file),
# ValueError/SyntaxError/EOFError (malformed headers or chunks), DecompressionBombError (absurd sizes).
DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def _to_array(image: Image.Image) -> np.ndarray:
    """Return (H, W, 3) float32 in [0, 1]."""
    if image.mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(image).astype(np.float32) / np.float32(65535)
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        # Going through RGBA keeps the palette colours and avoids Pillow's warning about
        # converting palette transparency straight to RGB; alpha is dropped just after.
        image = image.convert("RGBA")
    rgb = np.asarray(image.convert("RGB"))
    return rgb.astype(np.float32) / np.float32(255)


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file to a float32 tensor of shape (3, H, W) in [0, 1], RGB order.

    The EXIF orientation tag is applied, so H and W are those of the image as displayed.
    8-bit modes (1, L, P, LA, PA, RGB, RGBA, CMYK, YCbCr, ...) go through PIL's ``convert("RGB")`` and
    are divided by 255. 16-bit grayscale (I;16, I;16B, I) is divided by 65535 and float grayscale (F)
    is clipped to [0, 1]; grayscale is repeated over the three channels. Alpha is DROPPED, not
    composited: the stored colour channels are kept as they are, exactly as ``Image.open(p).convert("RGB")``
    does in the usual torchvision pipelines. 16-bit RGB files come out as Pillow decodes them (8 bits).

    Args:
        path: the image file.

    Returns:
        Tensor (3, H, W), float32, values in [0, 1].

    Raises:
        ImageDecodeError: the file is missing, empty, truncated, not an image, of an unsupported kind, not a
            regular file (a FIFO, which would block forever, a device, a symlink loop), or holds NaN or
            infinite pixels (float TIFFs).

    Example:
        >>> x = read_image("cat.png")  # doctest: +SKIP
        >>> x.shape, x.dtype  # doctest: +SKIP
        (torch.Size([3, 224, 224]), torch.float32)
    """
    check_regular_file(path)
    try:
        with Image.open(path) as image:
            # load() forces the full decode here, so truncated data fails inside this try.
            image.load()
            array = _to_array(ImageOps.exif_transpose(image))
    except DECODE_ERRORS as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageDecodeError(f"cannot decode {path}: {reason}") from error
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array[..., 0])).sum())
        raise ImageDecodeError(f"cannot use {path}: {bad} pixel(s) are NaN or infinite")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def check_regular_file(path: str | os.PathLike) -> None:
    """Refuse what is not a regular file before opening it: opening a FIFO would wait for a writer forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ImageDecodeError(f"cannot read {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
        raise ImageDecodeError(f"cannot read {path}: it is {kind}, not an image file")


def _log_skip(source: ImageSource, error: ImageDecodeError) -> None:
    logger.warning("skipping %s: %s", source.path, error)


def iter_batches(
    sources: Sequence[ImageSource],
    batch_size: int,
    on_skip: Callable[[ImageSource, ImageDecodeError], None] | None = None,
    min_size: int = 1,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Decode ``sources`` lazily and yield them in batches of images of one size.

    Consecutive images of the same size are grouped, up to ``batch_size``; an image of another size
    closes the current batch, so folders of mixed sizes work without resizing. At most one batch is
    held in memory. A source that fails to decode is passed to ``on_skip`` and left out; iteration
    goes on with the next one.

    Args:
        sources: images to read, e.g. from ``find_images``.
        batch_size: largest number of images per batch, at least 1.
        on_skip: called with the source and the error for each file that cannot be decoded or is smaller
            than ``min_size``. Default: log a warning naming the file.
        min_size: smallest height and width accepted (the smallest input of the network that follows).

    Yields:
        ``(indices, batch)``: positions in ``sources`` and a float32 tensor (B, 3, H, W) in [0, 1].

    Raises:
        InputError: ``batch_size`` is less than 1.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    skip = on_skip or _log_skip
    indices: list[int] = []
    images: list[torch.Tensor] = []
    for i, source in enumerate(sources):
        try:
            image = read_image(source.path)
        except ImageDecodeError as error:
            skip(source, error)
            continue
        if min(image.shape[-2:]) < min_size:
            height, width = image.shape[-2:]
            skip(source, ImageDecodeError(f"{source.path} is {height}x{width} px, smaller than the "
                                          f"{min_size}x{min_size} the network needs"))
            continue
        if images and image.shape != images[0].shape:
            yield indices, torch.stack(images)
            indices, images = [], []
        indices.append(i)
        images.append(image)
        if len(images) == batch_size:
            yield indices, torch.stack(images)
            indices, images = [], []
    if images:
        yield indices, torch.stack(images)
