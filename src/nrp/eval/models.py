"""The models an evaluation needs, built once and shared: classifiers, ensembles and feature extractors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nrp.attacks.ensemble import Ensemble
from nrp.eval.config import ENSEMBLE_JOIN


class ModelBank:
    """Builds models by name on first use and keeps them (each model is loaded once per run).

    Args:
        device: where models run.
        weights: explicit weights file per model name (``model_weights`` of the experiment file).
        provided: ready-made modules by name, used as they are (a user's own models; tests' tiny ones).
        preprocessing: per zoo model name, :func:`~nrp.zoo.create_model` options overriding its published
            resize policy (``input_size``, ``crop_pct``, ``interpolation``, ``antialias``).
    """

    def __init__(self, device: torch.device, weights: Mapping[str, str] | None = None,
                 provided: Mapping[str, nn.Module] | None = None,
                 preprocessing: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.device = device
        self.weights = dict(weights or {})
        self.preprocessing = {name: dict(settings) for name, settings in (preprocessing or {}).items()}
        self.cache: dict[str, nn.Module] = {}
        for name, module in (provided or {}).items():
            self.cache[name] = module.to(device).eval().requires_grad_(False)

    def classifier(self, name: str) -> nn.Module:
        """A classifier for [0, 1] images of any size; ``a+b`` is the mean-logit ensemble of ``a`` and ``b``."""
        if name not in self.cache:
            members = name.split(ENSEMBLE_JOIN)
            if len(members) > 1:
                self.cache[name] = Ensemble([self.classifier(member) for member in members])
            else:
                from nrp.zoo import as_classifier
                options = {**self.preprocessing.get(name, {}),
                           **({"weights": self.weights[name]} if name in self.weights else {})}
                self.cache[name] = as_classifier(name, **options).to(self.device).eval()
        return self.cache[name]

    def feature_extractor(self, backbone: str, layer: str, weights: str | None = None) -> nn.Module:
        """The frozen activation of ``layer`` of ``backbone`` (SSP's F_psi)."""
        key = f"{backbone}:{layer}"
        if key not in self.cache:
            from nrp.features import build_feature_extractor
            self.cache[key] = build_feature_extractor(backbone, layer, weights=weights or self.weights.get(backbone)).to(self.device)
        return self.cache[key]
