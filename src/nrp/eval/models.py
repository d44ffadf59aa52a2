"""The models an evaluation needs, built once and shared: classifiers, ensembles, feature extractors, and the
detectors and segmenters of the cross-task protocol."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.attacks.ensemble import Ensemble
from nrp.eval.components import ENSEMBLE_JOIN
from nrp.eval.detection import build_detector
from nrp.eval.segmentation import build_segmenter
from nrp.features import build_feature_extractor
from nrp.fingerprint import file_sha256, module_identity
from nrp.zoo import as_classifier
from nrp.zoo.loaders import MODEL_FILE_SUFFIXES

# Channels-last weights: nrp demo's evaluation stages took 13% less CPU time, its attacks the same
# (benchmarks/bench_demo.py, side by side, same predictions); PyTorch then picks that layout for outputs too.
MEMORY_FORMAT = torch.channels_last


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
        self.provided = set(provided or {})
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
                options = {**self.preprocessing.get(name, {}),
                           **({"weights": self.weights[name]} if name in self.weights else {})}
                self.cache[name] = as_classifier(name, **options).to(self.device, memory_format=MEMORY_FORMAT).eval()
        return self.cache[name]

    def feature_extractor(self, backbone: str, layer: str, weights: str | None = None,
                          input_size: int | None = None) -> nn.Module:
        """The frozen activation of ``layer`` of ``backbone`` (SSP's F_psi), the images resized to ``input_size``
        inside when given (:class:`~nrp.features.extractor.FeatureExtractor`)."""
        key = f"{backbone}:{layer}" + ("" if input_size is None else f"@{input_size}")
        if key not in self.cache:
            extractor = build_feature_extractor(backbone, layer, weights=weights or self.weights.get(backbone),
                                                input_size=input_size)
            self.cache[key] = extractor.to(self.device, memory_format=MEMORY_FORMAT)
        return self.cache[key]

    def task_model(self, name: str, detector: bool, num_classes: int) -> nn.Module:
        """The detector or segmenter ``name`` (torchvision's pretrained weights unless ``weights`` names a file;
        a segmenter with ``num_classes`` classes)."""
        if name not in self.cache:
            if detector:
                model = build_detector(name, weights=self.weights.get(name))
            else:
                model = build_segmenter(name, weights=self.weights.get(name), num_classes=num_classes)
            self.cache[name] = model.to(self.device).eval()
        return self.cache[name]

    def task_identity(self, name: str) -> Any:
        """What :meth:`task_model` gives for ``name``, without building it (see :meth:`extractor_identity`)."""
        if name in self.provided:
            return module_identity(self.cache[name])
        file = self.weights.get(name)
        return {"model": name, "weights": f"sha256:{file_sha256(file)}" if file else "published"}

    def identity(self, name: str) -> Any:
        """What classifier ``name`` computes, as plain values for fingerprints: a zoo model's name, upstream,
        weights (file SHA-256 or published) and preprocessing; a model file's SHA-256; a provided module's
        tensors' hash; an ensemble's members in order."""
        members = name.split(ENSEMBLE_JOIN)
        if len(members) > 1:
            return [self.identity(member) for member in members]
        model = self.classifier(name)
        if name not in self.provided and Path(name).suffix.lower() in MODEL_FILE_SUFFIXES:
            return {"file": name, "sha256": file_sha256(name)}
        return module_identity(model)

    def extractor_identity(self, backbone: str, layer: str, weights: str | None = None,
                           input_size: int | None = None) -> Any:
        """What :meth:`feature_extractor` gives for these arguments, without building it: a provided module's
        tensors' hash, else the backbone, layer, weights (file SHA-256, or the library's published ones) and,
        when given, the input size."""
        key = f"{backbone}:{layer}" + ("" if input_size is None else f"@{input_size}")
        if key in self.provided:
            return module_identity(self.cache[key])
        file = weights or self.weights.get(backbone)
        identity = {"backbone": backbone, "layer": layer, "weights": f"sha256:{file_sha256(file)}" if file else "published"}
        return identity if input_size is None else {**identity, "input_size": input_size}
