"""Building a :class:`FeatureExtractor` from a model name and a layer name.

Backbone names are resolved by the model zoo's registry (:func:`nrp.zoo.model_spec`): a zoo name (``inc_v3``,
``res152``, ``efficientnet-lite0``, ...), any torchvision classification model name, or ``timm/<name>``; so
``nrp train --backbone``/``--fgsm-model`` accept every name ``nrp eval`` does, with the same weights and
normalisation.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Sequence

from torch import nn

from nrp.checkpoints import load_weights, read_checkpoint
from nrp.errors import InputError
from nrp.features.extractor import FeatureExtractor
from nrp.features.layers import SingleOutput, truncate
from nrp.zoo.registry import model_spec
from nrp.zoo.sources import build_network
from nrp.zoo.spec import ModelSpec, resolve_spec

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "vgg16"
DEFAULT_LAYER = "conv3_3"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_feature_extractor(
    backbone: str = DEFAULT_BACKBONE,
    layer: str | Sequence[str] = DEFAULT_LAYER,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    download: bool = True,
    input_size: int | None = None,
) -> FeatureExtractor:
    """The activation of ``layer`` of a pretrained ``backbone``, for [0, 1] images (the paper's F_psi).

    The default is the paper's: torchvision VGG16 up to and including the ReLU after conv3_3
    (``features[:16]``), with ImageNet mean/std normalisation inside.

    Args:
        backbone: a model name of the zoo (:func:`nrp.zoo.model_names`: ``inc_v3``, ``res152``,
            ``efficientnet-lite0/1/2``, ...), a torchvision classification model name (``vgg16``, ``resnet50``,
            ...), or, with the ``timm`` extra installed, ``timm/<name>`` (a name neither knows also falls back
            to timm).
        layer: graph node name (``features.15``, ``layer2``) or VGG alias (``conv3_3``, ``pool4``); a list of
            them makes the extractor return ``{node: activation}`` for all (e.g. FFF's activation layers).
        weights: explicit weights file (``.pth``/``.safetensors`` state dict of the full backbone, or of the
            layers up to ``layer``). Overrides the library cache.
        pretrained: load ImageNet weights (from ``weights``, else the torchvision/timm cache). ``False``
            gives random weights: useful for tests and timing only.
        download: when torchvision weights are not cached, try to download them; otherwise fail at once
            (timm follows Hugging Face's ``HF_HUB_OFFLINE`` switch instead).
        input_size: resize every image to this square side (pixels) inside the extractor, as the classifier's
            own preprocessing does (:class:`FeatureExtractor`); ``None``: the image's own size.

    Raises:
        WeightsUnavailableError: the weights are neither cached nor downloadable; the message names the
            missing file, the cache folder and how to provide it.
        InputError: unknown backbone or layer (the message lists valid choices).

    Example:
        >>> extractor = build_feature_extractor("vgg16", "conv2_2", pretrained=False)
        >>> extractor(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 128, 16, 16])
    """
    if input_size is not None and input_size < 1:
        raise InputError(f"input_size must be a side in pixels >= 1, got {input_size}")
    layers = [layer] if isinstance(layer, str) else list(layer)
    spec = backbone_spec(backbone)
    model = _network(spec, backbone, pretrained and weights is None, download)
    graph, nodes = truncate(model, layers, backbone, graph_tools=_timm_models() if spec.source == "timm" else None)
    if weights is not None:
        _load_file(graph, model, weights, f"{backbone} up to {', '.join(nodes)}")
    logger.info("feature extractor %s:%s (%s weights)", backbone, ",".join(nodes), "pretrained" if pretrained else "random")
    body = SingleOutput(graph, nodes[0]) if isinstance(layer, str) else graph
    del model
    gc.collect()  # tracing leaves the whole backbone (VGG16: 550 MB) in reference cycles: free it now, not at some later GC
    return FeatureExtractor(body, spec.mean, spec.std, name=f"{backbone}:{','.join(nodes)}", input_size=input_size)


def build_classifier(
    backbone: str,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    download: bool = True,
) -> FeatureExtractor:
    """A whole pretrained classifier for [0, 1] images, normalisation inside: its "features" are the logits.

    Arguments and errors as :func:`build_feature_extractor`; ``weights`` must hold the full model.

    Example:
        >>> build_classifier("resnet18", pretrained=False)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1000])
    """
    model, mean, std = build_backbone(backbone, weights, pretrained, download)
    return FeatureExtractor(model, mean, std, name=backbone)


def build_backbone(
    backbone: str,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    download: bool = True,
) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
    """The full backbone module with its weights loaded, and the mean/std it expects (not applied).

    For callers that cut the network themselves (e.g. FFF's several activation layers). Arguments and errors
    as :func:`build_feature_extractor`.
    """
    spec = backbone_spec(backbone)
    model = _network(spec, backbone, pretrained and weights is None, download)
    if weights is not None:
        _load_file(model, model, weights, backbone)
    return model, spec.mean, spec.std


def backbone_spec(backbone: str) -> ModelSpec:
    """The zoo's resolved spec of ``backbone``; a name only timm knows (no ``timm/`` prefix) falls back to timm.

    Raises:
        InputError: unknown to the zoo, torchvision and timm.
    """
    try:
        return model_spec(backbone)
    except InputError as error:
        timm = _timm_models(required=False)
        if timm is not None and backbone in timm.list_models():
            return resolve_spec(ModelSpec("timm", backbone))
        hint = "" if timm is not None else " (install the 'timm' extra for timm backbones)"
        raise InputError(f"unknown backbone '{backbone}': {error}{hint}") from None


def _network(spec: ModelSpec, name: str, pretrained: bool, download: bool) -> nn.Module:
    """The full network of ``spec``: with its published weights, or random ones to be filled from a file."""
    network, _ = build_network(spec, pretrained, None, download, name)
    return network


def _load_file(target: nn.Module, model: nn.Module, weights: str | os.PathLike, description: str) -> None:
    """Fill ``target`` (``model`` or a truncated part of it) from the state dict file ``weights``."""
    state = read_checkpoint(weights).state_dict
    load_weights(target, state, source=str(weights), target=description, ignore=set(model.state_dict()))


def _timm_models(required: bool = True):
    try:
        import timm.models
    except ImportError:
        if required:
            raise InputError("timm backbones need the 'timm' extra: pip install 'nrp-purifier[timm]'") from None
        return None
    return timm.models
