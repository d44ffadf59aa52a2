"""A strict reader of Darknet ``.weights`` files into PyTorch convolutions.

The format (darknet's ``src/parser.c``, ``load_weights_upto``): a header of three int32 (major, minor,
revision) and the count of images seen during training, an int64 when ``major * 10 + minor >= 2`` (and both
below 1000) else an int32; then, for every convolutional layer in the order of the ``.cfg`` file, float32
arrays: with batch normalisation its ``filters`` biases (BN beta), scales (gamma), rolling means and
rolling variances, without it ``filters`` biases; then the kernel, ``filters x channels x size x size`` in
PyTorch's ``(out, in, h, w)`` order. Nothing else: max-pool, route, upsample and yolo layers have no weights.

The reader knows how many floats the network needs before it reads one, and refuses a file whose size is not
exactly the header plus those floats, so a file for another network (or a truncated download) cannot be
loaded partly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nrp.errors import CheckpointError

# (convolution, its batch normalisation or None when the convolution has a bias instead)
DarknetLayer = tuple[nn.Conv2d, nn.BatchNorm2d | None]


def darknet_float_count(layers: Sequence[DarknetLayer]) -> int:
    """The float32 values ``layers`` take from a weights file (kernels, biases, BN statistics)."""
    total = 0
    for conv, norm in layers:
        total += conv.weight.numel() + (4 if norm is not None else 1) * conv.out_channels
    return total


def header_size(major: int, minor: int) -> int:
    """Bytes of the header of a file of format version ``major.minor``: 12, plus 8 or 4 for the seen count."""
    return 12 + (8 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 4)


def load_darknet_weights(path: str | os.PathLike, layers: Sequence[DarknetLayer]) -> dict[str, int]:
    """Fill ``layers`` (in cfg order) from the Darknet weights file ``path``, consuming every float of it.

    Args:
        path: a ``.weights`` file.
        layers: each convolution with its batch normalisation (or ``None``: the convolution has a bias).

    Returns:
        The header: ``{"major", "minor", "revision", "seen"}``.

    Raises:
        CheckpointError: the file is shorter than a header, or its size is not the header plus exactly the
            floats ``layers`` need (the message gives both counts).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 16:
        raise CheckpointError(f"{path} is too short for a Darknet weights file ({len(data)} bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data, dtype="<i4", count=3))
    offset = header_size(major, minor)
    seen = int(np.frombuffer(data, dtype="<i8" if offset == 20 else "<i4", count=1, offset=12)[0])
    needed = darknet_float_count(layers)
    floats, remainder = divmod(len(data) - offset, 4)
    if remainder or floats != needed:
        raise CheckpointError(f"{path} holds {len(data) - offset} bytes of weights after its {offset}-byte header; "
                              f"the network needs {needed} floats ({4 * needed} bytes): not this network's file")
    values = torch.from_numpy(np.frombuffer(data, dtype="<f4", offset=offset).copy())
    position = 0

    def take(target: torch.Tensor) -> None:
        nonlocal position
        count = target.numel()
        with torch.no_grad():
            target.copy_(values[position:position + count].view_as(target))
        position += count

    for conv, norm in layers:
        if norm is not None:
            for tensor in (norm.bias, norm.weight, norm.running_mean, norm.running_var):
                take(tensor)
        else:
            take(conv.bias)
        take(conv.weight)
    assert position == needed  # guaranteed by the size check above
    return {"major": major, "minor": minor, "revision": revision, "seen": seen}
