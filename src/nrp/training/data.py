"""Unlabelled training images for NRP (Algorithm 2, Section 4.1): a reproducible stream of random crops.

Every sample is fixed by ``(seed, global sample position)`` alone: the position picks the image through a
per-epoch permutation, and a per-sample seed drives the crop and the flip. Worker RNG state plays no part,
so the batches of iteration ``k`` are the same whatever the number of DataLoader workers, after a resume
(``start_iteration=k``), and when a global batch is split over distributed ranks.

The paper resizes its 25k MS-COCO images to 480x480 and crops 128x128; here the short side is resized to
480 (aspect kept) by default, so any folder of photos serves. Photos stay 8-bit until the crop is cut: a JPEG
is decoded at the smallest DCT scale that still covers the resize (Pillow's ``draft``), resized in uint8, and
only the 128x128 crop is converted to float, so a loader worker costs a few milliseconds per sample. Each
photo is decoded once per epoch (an epoch visits each image once).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from nrp.errors import ImageDecodeError, InputError
from nrp.io import find_images, read_image
# nrp.io's own guards, so that the 8-bit path refuses exactly what read_image refuses (FIFOs, folders, and
# the exceptions Pillow raises on bad files).
from nrp.io.read import DECODE_ERRORS, check_regular_file

logger = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
# Domain tags keep the epoch seeds and the sample seeds from ever being the same stream.
_EPOCH_TAG = 0x45504F4348
_SAMPLE_TAG = 0x53414D504C45


@dataclass(frozen=True)
class CropSpec:
    """How a training sample is cut from an image.

    Attributes:
        resize: short side after resizing, pixels (antialiased; smaller images are upscaled to it).
        crop: side of the square random crop, pixels; at most ``resize``.
        flip: whether to flip horizontally with probability 1/2.
    """

    resize: int = 480
    crop: int = 128
    flip: bool = True

    def __post_init__(self) -> None:
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an integer >= 1, got {value!r}")
        if self.crop > self.resize:
            raise InputError(f"crop {self.crop} is larger than the resize {self.resize}; use crop <= resize")


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*values: int) -> int:
    """Deterministic 63-bit hash of integers (only their low 64 bits count), fit for ``manual_seed``."""
    state = 0
    for value in values:
        state = _splitmix64(state ^ (value & _MASK64))
    return state >> 1


@lru_cache(maxsize=4)
def _epoch_permutation(num_images: int, seed: int, epoch: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(derive_seed(_EPOCH_TAG, seed, epoch))
    return tuple(torch.randperm(num_images, generator=generator).tolist())


def sample_plan(num_images: int, seed: int, position: int) -> tuple[int, int]:
    """Image index and per-sample seed of the ``position``-th sample of the infinite training stream.

    The stream walks epochs: epoch ``position // num_images`` visits a permutation of ``range(num_images)``
    drawn from a generator seeded by a hash of ``(seed, epoch)``. The per-sample seed is a 63-bit hash of
    ``(seed, position)``. The current epoch's permutation is cached. Permutations are those of
    ``torch.randperm``, so they are reproducible for a given torch version.

    Args:
        num_images: images in the dataset, >= 1.
        seed: run seed, any integer (its low 64 bits count).
        position: global sample position, >= 0 (iteration ``k`` of global batch ``G`` holds ``k*G .. k*G+G-1``).

    Returns:
        ``(image index, sample seed)``.

    Example:
        >>> index, sample_seed = sample_plan(10, seed=0, position=3)
        >>> 0 <= index < 10
        True
    """
    if num_images < 1:
        raise InputError(f"num_images must be >= 1, got {num_images}")
    if position < 0:
        raise InputError(f"position must be >= 0, got {position}")
    epoch, offset = divmod(position, num_images)
    return _epoch_permutation(num_images, seed, epoch)[offset], derive_seed(_SAMPLE_TAG, seed, position)


def resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (antialiased bilinear) so the shorter side is ``size``, keeping the aspect ratio.

    Args:
        image: ``(3, H, W)`` or ``(B, 3, H, W)`` float in [0, 1].
        size: short side after resizing, pixels, >= 1. Smaller images are upscaled.

    Returns:
        Same leading shape, short side ``size``, long side ``int(size * long / short)``; values in [0, 1].
    """
    resized = TF.resize(image, [size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return resized.clamp_(0.0, 1.0)


# Modes that are not 8 bits per channel; they go through nrp.io's float decoder instead.
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def decode_resized(path: str | os.PathLike, short_side: int) -> torch.Tensor:
    """Decode ``path`` and resize it so its short side is ``short_side``, staying in 8 bits throughout.

    JPEGs are decoded straight at the smallest of Pillow's DCT scales (1/2, 1/4, 1/8) that keeps the short
    side at least ``short_side``, then resized (antialiased bilinear, in uint8, as torchvision does). EXIF
    orientation is applied and alpha dropped, as :func:`nrp.io.read_image` does; 16-bit and float images go
    through :func:`nrp.io.read_image` and are rounded to 8 bits.

    Args:
        path: an image file.
        short_side: pixels, >= 1; smaller images are upscaled.

    Returns:
        ``(3, H, W)`` uint8 with ``min(H, W) == short_side``.

    Raises:
        ImageDecodeError: the file cannot be decoded.
    """
    check_regular_file(path)
    try:
        with Image.open(path) as image:
            if image.mode in _WIDE_MODES:
                pixels = (read_image(path) * 255).round_().to(torch.uint8)
            else:
                scale = short_side / min(image.size)
                image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
                image.load()
                image = ImageOps.exif_transpose(image)
                if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
                    image = image.convert("RGBA")  # keeps palette colours; alpha is dropped just after
                pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    except DECODE_ERRORS as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageDecodeError(f"cannot decode {Path(path)}: {reason}") from error
    if min(pixels.shape[-2:]) == short_side:
        return pixels
    return TF.resize(pixels, [short_side], interpolation=InterpolationMode.BILINEAR, antialias=True)


class TrainingImages(Dataset):
    """Every image under some folders, served as random crops keyed by ``(image index, sample seed)``.

    Pair it with ``StreamSampler`` (or use ``training_loader``). An unreadable file is logged once per
    process and replaced by the next index (``index + 1`` mod ``len``, same sample seed), each file tried at
    most once; as decodability is a property of the file, the replacement is deterministic.

    Args:
        folders: folders (searched recursively) or files, as for ``nrp.io.find_images``.
        spec: resize, crop and flip settings.

    Raises:
        InputError: no image found under ``folders``.

    Example:
        >>> images = TrainingImages(["coco/"], CropSpec(resize=480, crop=128))  # doctest: +SKIP
        >>> images[(0, 12345)].shape  # doctest: +SKIP
        torch.Size([3, 128, 128])
    """

    def __init__(self, folders: Sequence[str | os.PathLike], spec: CropSpec = CropSpec()) -> None:
        if isinstance(folders, (str, os.PathLike)):
            folders = [folders]
        self.spec = spec
        self.paths = [source.path for source in find_images(folders)]
        self._unreadable: set[int] = set()
        logger.info("training on %d images from %s", len(self.paths), ", ".join(str(f) for f in folders))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        """Return the crop of ``item = (image index, sample seed)``: ``(3, crop, crop)`` float32 in [0, 1]."""
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"TrainingImages is indexed by (image index, sample seed), got {item!r}")
        index, sample_seed = item
        if not 0 <= index < len(self.paths):
            raise IndexError(f"image index {index} out of range for {len(self.paths)} images")
        return self._crop(self._decode_from(index), sample_seed)

    def _decode_from(self, index: int) -> torch.Tensor:
        count = len(self.paths)
        for step in range(count):
            candidate = (index + step) % count
            if candidate in self._unreadable:
                continue
            try:
                return decode_resized(self.paths[candidate], self.spec.resize)
            except ImageDecodeError as error:
                self._unreadable.add(candidate)
                logger.warning("skipping unreadable training image %s: %s", self.paths[candidate], error)
        raise ImageDecodeError(f"none of the {count} training images could be decoded (first: {self.paths[0]})")

    def _crop(self, image: torch.Tensor, sample_seed: int) -> torch.Tensor:
        """The sample's crop of the resized uint8 ``image``, converted to float32 in [0, 1] only now."""
        spec = self.spec
        height, width = image.shape[-2:]
        generator = torch.Generator().manual_seed(sample_seed)
        # Drawn in a fixed order, and the flip always drawn, so crop positions do not depend on spec.flip.
        top = int(torch.randint(0, height - spec.crop + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - spec.crop + 1, (1,), generator=generator))
        flip = bool(torch.rand(1, generator=generator) < 0.5)
        crop = image[:, top : top + spec.crop, left : left + spec.crop]
        if spec.flip and flip:
            crop = crop.flip(-1)
        return crop.float().div_(255.0)


class StreamSampler(Sampler[tuple[int, int]]):
    """Yields ``(image index, sample seed)`` for one rank's share of each global batch of the stream.

    For iterations ``k = start_iteration, start_iteration + 1, ...`` rank ``r`` of ``W`` gets positions
    ``k*G + r*G/W .. k*G + (r+1)*G/W - 1`` of the stream of ``sample_plan``, so the ranks' shares of
    iteration ``k``, concatenated in rank order, are the batch a single process gets. Resuming is
    constructing with ``start_iteration=k``; skipped iterations cost nothing.

    Args:
        num_images: images in the dataset, >= 1.
        seed: run seed, any integer.
        global_batch: samples per iteration over all ranks (``G``), divisible by ``world_size``.
        start_iteration: first iteration to yield, >= 0.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of ranks (``W``), >= 1.
        iterations: number of iterations to yield from ``start_iteration``; ``None`` for an endless stream.

    Raises:
        InputError: a value out of range, or ``global_batch`` not divisible by ``world_size``.
    """

    def __init__(
        self,
        num_images: int,
        seed: int,
        global_batch: int,
        start_iteration: int = 0,
        rank: int = 0,
        world_size: int = 1,
        iterations: int | None = None,
    ) -> None:
        if num_images < 1:
            raise InputError(f"num_images must be >= 1, got {num_images}")
        if global_batch < 1 or world_size < 1:
            raise InputError(f"global_batch and world_size must be >= 1, got {global_batch} and {world_size}")
        if global_batch % world_size:
            raise InputError(f"global batch {global_batch} is not divisible by the world size {world_size}")
        if not 0 <= rank < world_size:
            raise InputError(f"rank must be in [0, {world_size}), got {rank}")
        if start_iteration < 0 or (iterations is not None and iterations < 0):
            raise InputError(f"start_iteration and iterations must be >= 0, got {start_iteration} and {iterations}")
        self.num_images = num_images
        self.seed = seed
        self.global_batch = global_batch
        self.per_rank = global_batch // world_size
        self.start_iteration = start_iteration
        self.rank = rank
        self.iterations = iterations

    def __iter__(self) -> Iterator[tuple[int, int]]:
        iteration = self.start_iteration
        while self.iterations is None or iteration < self.start_iteration + self.iterations:
            first = iteration * self.global_batch + self.rank * self.per_rank
            for position in range(first, first + self.per_rank):
                yield sample_plan(self.num_images, self.seed, position)
            iteration += 1

    def __len__(self) -> int:
        if self.iterations is None:
            raise TypeError("an endless StreamSampler has no length; pass iterations to bound it")
        return self.iterations * self.per_rank


MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """Loader processes per rank: the CPUs this process may use, shared among the ranks of its node, at most 8.

    ``LOCAL_WORLD_SIZE`` (set by ``torchrun``) counts the ranks of the node; at least one worker.
    """
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks_here = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_DEFAULT_WORKERS, available // ranks_here))


def training_loader(
    dataset: TrainingImages,
    global_batch: int,
    seed: int,
    start_iteration: int = 0,
    rank: int = 0,
    world_size: int = 1,
    iterations: int | None = None,
    num_workers: int | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """DataLoader of this rank's ``(global_batch / world_size, 3, crop, crop)`` batches in [0, 1].

    Batch ``i`` is this rank's share of global batch ``start_iteration + i`` (see ``StreamSampler``),
    identical for any ``num_workers``.

    Args:
        dataset: the training images.
        global_batch: samples per iteration over all ranks; the paper uses 16.
        seed: run seed.
        start_iteration: iteration to resume from.
        rank: this process's rank.
        world_size: number of ranks.
        iterations: iterations to yield; ``None`` for an endless loader.
        num_workers: loader processes; default :func:`default_workers`.
        pin_memory: pin batches for faster (non-blocking) host-to-GPU copies; default: when CUDA is available.

    Raises:
        InputError: as ``StreamSampler``, or a negative ``num_workers``.
    """
    if num_workers is None:
        num_workers = default_workers()
    if num_workers < 0:
        raise InputError(f"num_workers must be >= 0, got {num_workers}")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    sampler = StreamSampler(len(dataset), seed, global_batch, start_iteration, rank, world_size, iterations)
    return DataLoader(
        dataset,
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )


def load_validation_images(
    folders: Sequence[str | os.PathLike], size: int, limit: int | None = None
) -> torch.Tensor:
    """Load a fixed held-out set: each image resized (short side ``size``) and centre-cropped to a square.

    Images are taken in ``find_images`` order; unreadable files are skipped with a warning, and reading
    stops once ``limit`` images are loaded.

    Args:
        folders: folders (searched recursively) or files.
        size: side of the output squares, pixels, >= 1.
        limit: most images to load, >= 1; ``None`` for all.

    Returns:
        ``(N, 3, size, size)`` float32 in [0, 1].

    Raises:
        InputError: bad ``size`` or ``limit``, nothing found, or no file could be decoded.
    """
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    if size < 1:
        raise InputError(f"size must be >= 1, got {size}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be >= 1 or None, got {limit}")
    images: list[torch.Tensor] = []
    for source in find_images(folders):
        if limit is not None and len(images) == limit:
            break
        try:
            image = read_image(source.path)
        except ImageDecodeError as error:
            logger.warning("skipping unreadable validation image %s: %s", source.path, error)
            continue
        images.append(TF.center_crop(resize_short_side(image, size), [size, size]))
    if not images:
        searched = ", ".join(str(f) for f in folders)
        raise InputError(f"no readable validation images in {searched}")
    return torch.stack(images)
