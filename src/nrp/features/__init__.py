"""Frozen feature extractors F_psi: a pretrained backbone cut at one layer, normalisation inside."""

from nrp.features.backbones import (
    DEFAULT_BACKBONE,
    DEFAULT_LAYER,
    build_backbone,
    build_classifier,
    build_feature_extractor,
)
from nrp.features.extractor import FeatureExtractor
from nrp.features.layers import activation_layers, truncate, vgg_layer_aliases

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_LAYER",
    "FeatureExtractor",
    "activation_layers",
    "build_backbone",
    "build_classifier",
    "build_feature_extractor",
    "truncate",
    "vgg_layer_aliases",
]
