"""Fingerprints of everything that shapes a cached result: configurations, weights files and modules.

A stored artefact (an image set, a prediction file, a report row) records the fingerprint of the plain-value
record that describes how it was made; a later run that would make it differently has another fingerprint,
so the stale artefact is recomputed rather than reused. Every fingerprint includes the versions of the
packages whose numerics shape results (:func:`numerics_versions`).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

DIGITS = 16  # 64 bits: collisions among one run's artefacts are out of reach
NUMERICS_PACKAGES = ("nrp-purifier", "torch", "torchvision", "timm")
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def fingerprint(record: Any) -> str:
    """A short hex digest of ``record``'s canonical JSON (sorted keys; non-JSON values by ``str``).

    Example:
        >>> fingerprint({"a": 1, "b": [2, 3]}) == fingerprint({"b": [2, 3], "a": 1})
        True
    """
    text = json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGITS]


def numerics_versions() -> dict[str, str]:
    """The installed versions of the packages whose numerics shape stored results (absent ones omitted)."""
    found = {}
    for package in NUMERICS_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), computed once per (path, size, modification time) in a process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def module_identity(module: nn.Module) -> Any:
    """What a module computes, as plain values: its ``identity`` record when it has one (zoo classifiers:
    name, upstream, weights file hash, preprocessing), else its class and a hash of its tensors."""
    identity = getattr(module, "identity", None)
    if identity:
        return identity
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            value = tensor.detach().to("cpu", copy=True).contiguous()
            digest.update(str((tuple(value.shape), str(value.dtype))).encode())
            digest.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return {"class": f"{type(module).__module__}.{type(module).__qualname__}", "tensors": digest.hexdigest()[:DIGITS]}
