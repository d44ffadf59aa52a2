"""Loading purifier networks from weight files, and saving them so they describe themselves."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.checkpoints import Checkpoint, load_weights, read_checkpoint, write_checkpoint
from nrp.errors import CheckpointError, InputError
from nrp.purifiers.registry import (
    ARGUMENT_INFERENCE, architecture_of, create_network, infer_architecture, purifier_class,
)

# Bounds on what a weights file may ask to build: the authors' NRP has width 64 and 23 blocks, 16.7M values.
MAX_ARGUMENT = 4096
MAX_PARAMETERS = 500_000_000  # 2 GB of float32, 30 times the authors' NRP


def load_network(
    path: str | os.PathLike,
    architecture: str | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Build the purifier network stored in ``path`` and load its weights (in eval mode).

    The architecture and its constructor arguments come from the file when this project wrote it, or are
    recognised from the key layout and tensor shapes of a plain state dict such as the authors' ``NRP.pth``
    or ``NRP_resG.pth``. ``architecture`` (``"nrp"`` or ``"nrp_resg"``) is then only a check.

    Raises:
        CheckpointError: one line naming the file and what does not fit (missing or unexpected keys,
            shape mismatches, an architecture other than the one asked for, an unreadable file).
    """
    checkpoint = read_checkpoint(path, map_location)
    name, arguments = checkpoint.architecture, checkpoint.arguments
    if name is None:
        inferred = infer_architecture(checkpoint.state_dict)
        if inferred is None and architecture is None:
            raise CheckpointError(f"{path}: its keys match no known purifier; pass --purifier to name the architecture")
        name, arguments = inferred if inferred is not None else (architecture, {})
    if architecture is not None and name != architecture:
        raise CheckpointError(f"{path} holds a '{name}' purifier, not '{architecture}'")
    check_arguments(name, arguments, checkpoint.state_dict, path)
    try:
        network = create_network(name, **arguments)
    except (InputError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: cannot build purifier '{name}' with {arguments}: {error}") from None
    signature = f"{name}({', '.join(f'{k}={v}' for k, v in arguments.items())})"
    load_weights(network, checkpoint.state_dict, source=str(path), target=signature)
    return network.to(map_location).eval()


def check_arguments(name: str, arguments: dict[str, Any], state_dict: dict[str, torch.Tensor],
                    path: str | os.PathLike) -> None:
    """Validate constructor arguments read from a file before the network is built.

    Every argument must be one the architecture's constructor takes, integers in ``[1, MAX_ARGUMENT]`` (every
    size argument of the purifiers is a channel or block count), and agree with what the file's own tensors
    say (the registry's argument inference): a file declaring 4000 blocks for a 1-block state dict is refused
    before 4000 blocks are allocated, so the file's size bounds the network's. Files above
    ``MAX_PARAMETERS`` values are refused.

    Raises:
        CheckpointError: one line naming the file and the argument, or the size.
    """
    try:
        parameters = inspect.signature(purifier_class(name)).parameters
    except InputError as error:
        raise CheckpointError(f"{path}: cannot build purifier '{name}': {error}") from None
    for key, value in arguments.items():
        if key not in parameters:
            raise CheckpointError(f"{path}: '{name}' takes no argument '{key}'; accepted: {', '.join(parameters)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ARGUMENT:
            raise CheckpointError(f"{path}: argument {key} of '{name}' must be an integer in [1, {MAX_ARGUMENT}], "
                                  f"got {value!r}")
    size = sum(tensor.numel() for tensor in state_dict.values())
    if size > MAX_PARAMETERS:
        raise CheckpointError(f"{path} holds {size:,} values, more than the {MAX_PARAMETERS:,} a purifier may have")
    try:
        held = ARGUMENT_INFERENCE[name](state_dict)
    except (KeyError, ValueError, IndexError):
        return  # the keys do not fit the architecture: load_weights names the misfit after a build of declared size
    for key, value in held.items():
        if key in arguments and arguments[key] != value:
            raise CheckpointError(f"{path} declares {key}={arguments[key]} for '{name}', but its tensors are of "
                                  f"{key}={value}")


def save_network(network: nn.Module, path: str | os.PathLike) -> None:
    """Write ``network`` with its architecture name and constructor arguments (``.safetensors`` or ``.pth``)."""
    name, arguments = architecture_of(network)
    write_checkpoint(Checkpoint(network.state_dict(), name, arguments), Path(path))
