"""Cutting a backbone at a named layer, so nothing past it is computed."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import feature_extraction

from nrp.errors import InputError

# How many valid layer names an "unknown layer" error lists.
LAYERS_SHOWN = 8


class SingleOutput(nn.Module):
    """Unwrap the one-entry dict that torchvision's feature-extraction graph returns."""

    def __init__(self, graph: nn.Module, key: str) -> None:
        super().__init__()
        self.graph = graph
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)[self.key]


def vgg_layer_aliases(model: nn.Module) -> dict[str, str]:
    """Map VGG-style names (``conv3_3``: the ReLU after block 3's third conv; ``pool3``) to graph node names.

    The paper's default layer "conv3_3" of VGG16 is ``features.15``: the activation after its ReLU, as in
    the authors' ``features[:16]``. Models without a ``features`` Sequential get no aliases.
    """
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return {}
    aliases: dict[str, str] = {}
    block, conv = 1, 0
    for index, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            conv += 1
        elif isinstance(layer, nn.ReLU) and conv:
            aliases[f"conv{block}_{conv}"] = f"features.{index}"
        elif isinstance(layer, nn.MaxPool2d):
            aliases[f"pool{block}"] = f"features.{index}"
            block, conv = block + 1, 0
    return aliases


def activation_layers(model: nn.Module) -> list[str]:
    """The ReLU after every convolution of a VGG, as aliases (``conv1_1`` ...): FFF's "activation layers".

    Raises:
        InputError: the model has no VGG ``features`` to take them from.
    """
    layers = [name for name in vgg_layer_aliases(model) if name.startswith("conv")]
    if not layers:
        raise InputError("the model has no VGG `features`; name the layers to maximise (graph node names; --layers on the command line)")
    return layers


def truncate(model: nn.Module, layers: Sequence[str], model_name: str, graph_tools=None) -> tuple[nn.Module, list[str]]:
    """Return ``(graph, nodes)``: a module computing ``model`` only as far as ``layers`` need, and their node names.

    ``graph`` maps its input to ``{node: activation}``. Each layer is a graph node name as listed by
    ``torchvision.models.feature_extraction.get_graph_node_names`` (e.g. ``features.15``,
    ``layer3.1.relu_2``), a module name (``layer1``: its output) or a VGG alias (``conv3_3``). Unknown names
    raise :class:`InputError` listing valid ones. ``graph_tools`` is the module providing
    ``get_graph_node_names`` and ``create_feature_extractor``: torchvision's (default), or ``timm.models`` for
    timm backbones (it knows their untraceable leaf modules).
    """
    graph_tools = graph_tools or feature_extraction
    aliases = vgg_layer_aliases(model)
    nodes = [aliases.get(layer, layer) for layer in layers]
    with warnings.catch_warnings():
        # Extractors always run in eval mode, so eval-mode node names are the right ones (torchvision warns
        # when train mode, e.g. with drop-connect, traces more nodes).
        warnings.filterwarnings("ignore", message="NOTE: The nodes obtained by tracing")
        _, known = graph_tools.get_graph_node_names(model.eval())
        for layer, node in zip(layers, nodes):
            # A module name (``layer1``) stands for the last node inside it, as in torchvision's feature extraction.
            if node not in known and not any(name.startswith(node + ".") for name in known):
                shown = ", ".join(known[1:LAYERS_SHOWN + 1])
                raise InputError(
                    f"unknown layer '{layer}' of {model_name}; it has {len(known)} layers, e.g. {shown} ... "
                    "(list them with torchvision.models.feature_extraction.get_graph_node_names)"
                )
        graph = graph_tools.create_feature_extractor(model, return_nodes={node: node for node in nodes})
    return graph, nodes
