"""Building a zoo entry's network from torchvision, timm or EfficientNet-Lite, and filling its weights."""

from __future__ import annotations

import os

import torch
import torchvision
from torch import nn

from nrp.checkpoints import load_weights, read_checkpoint
from nrp.errors import WeightsUnavailableError
from nrp.zoo.efficientnet_lite import create_efficientnet_lite, efficientnet_lite_weights
from nrp.zoo.pretrained import (
    HOW_TO_PROVIDE,
    TORCHVISION_PRETRAINED_ARGUMENTS,
    timm_pretrained_model,
    torchvision_pretrained_state,
)
from nrp.zoo.spec import ModelSpec, timm_models

# Classifier heads a weights file may have: ImageNet's 1000 classes, or TF-slim's background class + 1000.
HEAD_SIZES = (1000, 1001)


def build_network(
    spec: ModelSpec,
    pretrained: bool,
    weights: str | os.PathLike | None,
    download: bool,
    name: str,
) -> tuple[nn.Module, int]:
    """The network of resolved ``spec`` with its weights, and the label offset of its logits.

    ``weights`` (a state dict file) wins over ``pretrained``; pretrained weights are fetched before the
    network is built, so a missing file fails at once. A weights file whose classifier has 1001 outputs
    (TF-slim's background class first) or 1000 is taken as it is: the head is rebuilt to fit and the label
    offset follows (torchvision and timm sources).

    Raises:
        WeightsUnavailableError: pretrained weights requested but not published, cached or downloadable.
        CheckpointError: the weights file is unreadable or does not fit the network.
    """
    state, source = None, None
    if weights is not None:
        state, source = read_checkpoint(weights).state_dict, str(weights)
    elif pretrained and not spec.published:
        raise WeightsUnavailableError(f"{name} has no published pretrained weights ({spec.note}); {HOW_TO_PROVIDE}")
    elif pretrained and spec.weights_file is not None:
        path = spec.weights_file()
        state, source = read_checkpoint(path).state_dict, str(path)
    elif pretrained and spec.source == "torchvision":
        state = torchvision_pretrained_state(spec.upstream, download, spec.upstream_weights)
        source = f"torchvision's {spec.upstream} {spec.upstream_weights or 'DEFAULT'} weights"
    elif pretrained and spec.source == "efficientnet-lite":
        path = efficientnet_lite_weights(spec.upstream)
        state, source = read_checkpoint(path).state_dict, str(path)
    elif pretrained:
        return timm_pretrained_model(spec.upstream), spec.label_offset

    outputs = spec.num_outputs
    network = _create(spec, outputs)
    if state is None:
        return network, spec.label_offset
    rows = _classifier_rows(network, state)
    if rows in HEAD_SIZES and rows != outputs and spec.source != "efficientnet-lite":
        outputs = rows
        network = _create(spec, outputs)
    load_weights(network, state, source=source, target=f"{name} ({spec.source} {spec.upstream}, {outputs} classes)")
    return network, spec.label_offset + outputs - spec.num_outputs


def _create(spec: ModelSpec, outputs: int) -> nn.Module:
    """Random-weight network with ``outputs`` logits."""
    if spec.source == "torchvision":
        arguments = TORCHVISION_PRETRAINED_ARGUMENTS.get(spec.upstream, {})
        return torchvision.models.get_model(spec.upstream, weights=None, num_classes=outputs, **arguments)
    if spec.source == "timm":
        return timm_models().create_model(spec.upstream, pretrained=False, num_classes=outputs)
    return create_efficientnet_lite(spec.upstream)


def _classifier_rows(network: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """Rows of the file's classifier bias: the last entry of the state dict in every supported family."""
    key = next(reversed(network.state_dict()))
    value = state.get(key)
    return value.shape[0] if value is not None and value.dim() == 1 else None
