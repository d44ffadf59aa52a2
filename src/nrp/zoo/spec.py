"""What a zoo entry is: where its network and weights come from, and the preprocessing it expects."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torchvision

from nrp.errors import InputError
from nrp.zoo.efficientnet_lite import EFFICIENTNET_LITE
from nrp.zoo.efficientnet_lite import MEAN as LITE_MEAN
from nrp.zoo.efficientnet_lite import STD as LITE_STD

SOURCES = ("torchvision", "timm", "efficientnet-lite")
IMAGENET_CLASSES = 1000
TIMM_INSTALL_HINT = "pip install 'nrp-purifier[timm]'"
# TensorFlow's EfficientNet(-Lite) evaluation: a centre crop of S / (S + 32) of the image, bicubic resize to S
# (efficientnet/preprocessing.py, CROP_PADDING = 32; tf.image.resize does not antialias).
TF_EFFICIENTNET_CROP_PADDING = 32


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry. Fields left ``None`` are read from the upstream library by :func:`resolve_spec`.

    Args:
        source: ``"torchvision"``, ``"timm"`` or ``"efficientnet-lite"``.
        upstream: the model's name there (``"resnet152"``, ``"inception_v3.tf_in1k"``, ``"efficientnet-lite0"``).
        upstream_weights: torchvision only: the weights tag (``"IMAGENET1K_V1"``) whose evaluation transforms
            fill the preprocessing and whose state dict ``pretrained`` loads; ``None``: torchvision's ``DEFAULT``.
            Name it when the entry's weights are not the default ones (their presets differ: MobileNetV2's
            ``IMAGENET1K_V1`` resizes to 256, the default ``IMAGENET1K_V2`` to 232).
        paper_name: the paper's name for it (``"Inc-v3"``), for reports; empty when the paper has none.
        input_size: the network's input ``(H, W)``; ``None``: the upstream config's.
        crop_pct: ``input_size`` over the short side before the centre crop; 1.0 resizes straight to
            ``input_size``; ``None``: the upstream config's.
        interpolation: ``"bilinear"`` or ``"bicubic"``, the resize the weights were evaluated with; ``None``:
            the upstream config's.
        antialias: whether that resize low-passes before downscaling (PIL and torchvision do, TF does not);
            ``None``: the upstream config's.
        mean: per-channel normalisation mean (RGB, [0, 1] units); ``None``: the upstream config's.
        std: per-channel normalisation standard deviation; ``None``: the upstream config's.
        label_offset: 1 when logit 0 is TF-slim's "background" class, else 0; ``None``: the upstream config's.
        num_outputs: logits the network produces (1000 + ``label_offset``); ``None``: the upstream config's.
        published: whether pretrained weights for it can be had; ``False`` entries build with random
            weights or a user's ``weights=`` file only.
        note: what a reader should know (an approximation, missing weights); shown in errors and docs.
        weights_file: returns the pretrained state dict file (e.g. fetched from a registry package on first
            use), instead of the upstream library's weights.
    """

    source: str
    upstream: str
    upstream_weights: str | None = None
    paper_name: str = ""
    input_size: tuple[int, int] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    antialias: bool | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    label_offset: int | None = None
    num_outputs: int | None = None
    published: bool = True
    note: str = ""
    weights_file: Callable[[], Path] | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown model source '{self.source}'; known: {', '.join(SOURCES)}")
        if self.upstream_weights is not None and self.source != "torchvision":
            raise ValueError(f"upstream_weights names torchvision weights; {self.source} has none ({self.upstream_weights!r})")


def resolve_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` with every ``None`` field filled from the upstream library's own config.

    torchvision: the evaluation transforms of the weights ``upstream_weights`` names (``None``: ``DEFAULT``):
    crop size, resize size, interpolation, antialias, mean, std; timm: the model's ``pretrained_cfg`` (``input_size``, ``crop_pct``,
    ``interpolation``, ``mean``, ``std``, ``num_classes``, ``label_offset``), antialiased as timm's PIL
    resize is; EfficientNet-Lite: TensorFlow's evaluation (crop ``S / (S + 32)``, bicubic, no antialiasing),
    mean/std 0.5.
    """
    upstream = upstream_config(spec.source, spec.upstream, spec.upstream_weights)
    filled = {key: value for key, value in upstream.items() if getattr(spec, key) is None}
    return dataclasses.replace(spec, **filled)


def upstream_config(source: str, upstream: str, upstream_weights: str | None = None) -> dict:
    """The preprocessing and output fields of :class:`ModelSpec` as ``source`` publishes them for ``upstream``
    (torchvision: for its weights ``upstream_weights``, ``None`` for ``DEFAULT``)."""
    if source == "torchvision":
        preset = torchvision_weights(upstream, upstream_weights).transforms()
        crop, resize = preset.crop_size[0], preset.resize_size[0]
        return dict(input_size=(crop, crop), crop_pct=crop / resize, interpolation=preset.interpolation.value,
                    antialias=bool(preset.antialias), mean=tuple(preset.mean), std=tuple(preset.std),
                    label_offset=0, num_outputs=IMAGENET_CLASSES)
    if source == "timm":
        try:
            config = timm_models().get_pretrained_cfg(upstream)
        except RuntimeError:  # a known architecture with an unknown tag
            config = None
        if config is None:
            raise InputError(f"timm has no model '{upstream}'")
        return dict(input_size=tuple(config.input_size[1:]), crop_pct=config.crop_pct,
                    interpolation=config.interpolation, antialias=True, mean=tuple(config.mean),
                    std=tuple(config.std), label_offset=config.label_offset or 0, num_outputs=config.num_classes)
    size = EFFICIENTNET_LITE[upstream]
    return dict(input_size=(size, size), crop_pct=size / (size + TF_EFFICIENTNET_CROP_PADDING),
                interpolation="bicubic", antialias=False, mean=LITE_MEAN, std=LITE_STD, label_offset=0,
                num_outputs=IMAGENET_CLASSES)


def torchvision_weights(upstream: str, tag: str | None = None) -> torchvision.models.WeightsEnum:
    """torchvision's weights ``tag`` of model ``upstream`` (``None``: ``DEFAULT``).

    Raises:
        InputError: ``upstream`` has no weights named ``tag``; the message lists the ones it has.
    """
    weights = torchvision.models.get_model_weights(upstream)
    if tag is None:
        return weights.DEFAULT
    if tag not in weights.__members__:
        raise InputError(f"torchvision {upstream} has no weights '{tag}'; known: {', '.join(weights.__members__)}")
    return weights[tag]


def timm_models():
    """``timm.models``, or an :class:`InputError` saying how to install timm."""
    try:
        import timm.models
    except ImportError:
        raise InputError(f"timm models need the 'timm' extra: {TIMM_INSTALL_HINT}") from None
    return timm.models
