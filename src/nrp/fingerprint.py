"""Fingerprints of everything that shapes a cached result: configurations, weights files and modules.

A stored artefact (an image set, a prediction file, a report row) records the fingerprint of the plain-value
record that describes how it was made; a later run that would make it differently has another fingerprint,
so the stale artefact is recomputed rather than reused. Every fingerprint includes the versions of the
packages whose numerics shape results and a digest of nrp's own code (:func:`numerics_versions`), so a
changed attack or defense in a development checkout, whose version number stays the same, is not mistaken
for the one that made a stored set.
"""

from __future__ import annotations

import functools
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
# nrp's subpackages whose code shapes no stored artefact: the command line, the offline data recipes, and
# training, whose product (a weights file) is fingerprinted by its bytes.
SOURCE_EXCLUDED = ("cli", "offline", "training")
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
    """The installed versions of the packages whose numerics shape stored results (absent ones omitted), and
    ``nrp-source``: :func:`source_digest`."""
    found = {}
    for package in NUMERICS_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    found["nrp-source"] = source_digest()
    return found


@functools.cache
def source_digest() -> str:
    """A digest of the running ``nrp`` package's code (:func:`code_digest` of its folder); once per process."""
    return code_digest(Path(__file__).resolve().parent)


def code_digest(root: Path, excluded: tuple[str, ...] = SOURCE_EXCLUDED) -> str:
    """A digest of the ``.py`` files under ``root`` (relative paths and bytes), but those in the top-level
    folders ``excluded``; a few milliseconds for nrp's 160 files."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in excluded or "__pycache__" in relative.parts:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:DIGITS]


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
