"""JPEG compression with a real codec (Guo et al., ICLR 2018; the paper's qualities 75, 50 and 20)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import nn

from nrp.defenses._checks import check_choice, check_images, check_int
from nrp.errors import InputError

DEFAULT_QUALITY = 75
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
DEFAULT_SUBSAMPLING = "4:2:0"  # Pillow's (libjpeg's) default for RGB at every quality


def jpeg_compress(x: torch.Tensor, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING) -> torch.Tensor:
    """Encode every image as a baseline JPEG with Pillow (libjpeg) and decode it again.

    Each image is quantised to 8 bits as :func:`nrp.io.write.to_uint8` does (clamp, ``round(x * 255)`` in
    float32, half to even), encoded at ``quality`` with libjpeg's standard tables, decoded, and divided by
    255: the result is bit-exact with saving the 8-bit image with Pillow at the same settings and reading
    it back. Images go through the codec on the CPU, on ``torch.get_num_threads()`` threads, and come
    back on ``x``'s device and dtype.

    The codec has no gradient: the result is detached. Attack it with BPDA (identity backward) or
    through :func:`~nrp.defenses.jpeg_differentiable`.

    Args:
        x: images ``(B, 3, H, W)`` in [0, 1].
        quality: libjpeg quality, 1..100 (the paper uses 75, 50 and 20; above 95 the tables are mostly 1s).
        subsampling: chroma subsampling, ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"`` (Pillow's default).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], multiples of 1/255.

    Example:
        >>> y = jpeg_compress(torch.rand(2, 3, 16, 16), quality=50)
        >>> y.shape, bool((y * 255 - (y * 255).round()).abs().max() < 1e-4)
        (torch.Size([2, 3, 16, 16]), True)
    """
    check_images(x, channels=3)
    check_int("quality", quality, 1, 100)
    check_choice("subsampling", subsampling, SUBSAMPLINGS)
    pixels = _to_uint8(x)

    def roundtrip_in_place(image: np.ndarray) -> None:  # a decoded image has the size of the one encoded
        image[...] = _roundtrip(image, quality, subsampling)

    # Pillow releases the GIL while it encodes and decodes: images go through the codec on as many threads
    # as torch may use (one thread: in order, in this one)
    workers = min(torch.get_num_threads(), len(pixels))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(roundtrip_in_place, pixels))
    else:
        for image in pixels:
            roundtrip_in_place(image)
    return _from_uint8(pixels, x.dtype).to(x.device)


# The conversions around the codec are done in NumPy, which runs them on one thread: they are a few cheap
# passes, and torch's thread pool costs more than it gives when other processes share the cores.


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """The batch version of :func:`nrp.io.write.to_uint8`: ``(B, 3, H, W)`` -> ``(B, H, W, 3)`` uint8, same values.

    ``x * 255`` clamped to [0, 255] and rounded half to even in float32 equals ``round(clamp(x, 0, 1) * 255)``.
    """
    array = x.detach().to(device="cpu", dtype=torch.float32).numpy()
    if np.isnan(array.sum()) and np.isnan(array).any():  # the sum is one cheap pass; NaN propagates into it
        raise InputError("images contain NaN values; JPEG needs pixel values in [0, 1]")
    scaled = np.multiply(array.transpose(0, 2, 3, 1), np.float32(255.0))
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8, order="C")


def _from_uint8(pixels: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` of ``dtype``, divided by 255 in that precision (float32 below it)."""
    working = np.float64 if dtype == torch.float64 else np.float32
    out = np.empty((pixels.shape[0], pixels.shape[3], pixels.shape[1], pixels.shape[2]), dtype=working)
    np.divide(pixels.transpose(0, 3, 1, 2), working(255.0), out=out)
    return torch.from_numpy(out).to(dtype)


def _roundtrip(pixels: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    """(H, W, 3) uint8 -> the same image after a JPEG encode and decode, (H, W, 3) uint8."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer) as decoded:  # an RGB JPEG decodes to RGB
        return np.asarray(decoded)


class JpegCompression(nn.Module):
    """:func:`jpeg_compress` as a module: ``nn.Sequential(JpegCompression(75), classifier)``.

    Shapes:
        ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` in [0, 1], detached.
    """

    def __init__(self, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING) -> None:
        super().__init__()
        self.quality = check_int("quality", quality, 1, 100)
        self.subsampling = check_choice("subsampling", subsampling, SUBSAMPLINGS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg_compress(x, self.quality, self.subsampling)

    def extra_repr(self) -> str:
        return f"quality={self.quality}, subsampling={self.subsampling!r}"
