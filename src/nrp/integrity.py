"""Integrity of weights files: a SHA-256 of their tensors, the zip CRCs of ``.pth`` files, finite values.

Every weights file this project writes records :func:`tensor_digest` of its tensors (``.safetensors``: the
header's ``sha256`` metadata; ``.pth``: a ``sha256`` entry of the saved dict), and every read verifies it, so a
flipped byte anywhere in the tensor data is refused instead of loaded. Files from elsewhere carry no digest
(the authors' ``NRP.pth``, torchvision's caches): they are read unverified, with ``.pth`` zips still
CRC-checked by :func:`check_zip`. All weights are checked for NaN and infinity by :func:`check_finite`.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from nrp.errors import CheckpointError

DIGEST_KEY = "sha256"


def _tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts, lists and tuples, with its path, in an order fixed by the keys."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from _tensors(value[key], f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{prefix}/{index}")


def tensor_digest(value: Any) -> str:
    """SHA-256 (hex) of every tensor in ``value`` (a tensor, or nested dicts/lists of them): path, dtype, shape, bytes.

    Non-tensor entries do not count. Equal tensors under equal keys give equal digests whatever the device or
    memory layout; changing one byte, a dtype, a shape or a key changes it.
    """
    digest = hashlib.sha256()
    for path, tensor in _tensors(value):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{path}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def verify_digest(value: Any, recorded: str, path: Path) -> None:
    """Refuse ``path`` when the digest of its tensors differs from the one recorded when it was written."""
    if tensor_digest(value) != recorded:
        raise CheckpointError(
            f"{path} is damaged: the SHA-256 of its tensors differs from the one recorded when it was written"
        )


def check_zip(path: Path) -> None:
    """CRC-check every member of a zip-format ``.pth`` file (``torch.save``'s default); other files pass unchecked."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise CheckpointError(f"{path} is damaged: its zip structure cannot be read ({error})") from None
    if bad is not None:
        raise CheckpointError(f"{path} is damaged: the CRC of its member {bad} does not match its data")


def check_finite(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor and how many values are bad."""
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = (~torch.isfinite(tensor)).sum().item()
            if bad:
                raise CheckpointError(
                    f"{path}: tensor {key} holds {bad} non-finite value(s) (NaN or infinity) of {tensor.numel()}"
                )
