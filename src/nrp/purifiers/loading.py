"""Loading purifier networks from weight files, and saving them so they describe themselves."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from nrp.checkpoints import Checkpoint, load_weights, read_checkpoint, write_checkpoint
from nrp.errors import CheckpointError, InputError
from nrp.purifiers.registry import architecture_of, create_network, infer_architecture


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
    try:
        network = create_network(name, **arguments)
    except (InputError, TypeError) as error:
        raise CheckpointError(f"{path}: cannot build purifier '{name}' with {arguments}: {error}") from None
    signature = f"{name}({', '.join(f'{k}={v}' for k, v in arguments.items())})"
    load_weights(network, checkpoint.state_dict, source=str(path), target=signature)
    return network.to(map_location).eval()


def save_network(network: nn.Module, path: str | os.PathLike) -> None:
    """Write ``network`` with its architecture name and constructor arguments (``.safetensors`` or ``.pth``)."""
    name, arguments = architecture_of(network)
    write_checkpoint(Checkpoint(network.state_dict(), name, arguments), Path(path))
