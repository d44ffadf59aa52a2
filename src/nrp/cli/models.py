"""``--model`` flags: the classifiers an attack uses as its source (one, or an ensemble of several)."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from nrp.errors import InputError
from nrp.zoo import as_classifier
from nrp.zoo.loaders import MODEL_FILE_SUFFIXES


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model a,b`` (zoo names, torchvision names, ``timm/<name>`` or model files) and matching ``--model-weights``."""
    parser.add_argument("--model", required=True, help="source classifier(s), comma-separated: zoo names (inc_v3, res152, "
                        "efficientnet-lite0, ...; docs/models.md), torchvision names, timm/<name>, or TorchScript/ONNX "
                        "files; an ensemble attacks their averaged logits")
    parser.add_argument("--model-weights", help="weights files in the order of --model, comma-separated (default: library caches)")
    parser.add_argument("--no-download", action="store_true", help="fail at once if weights are not cached")


def load_models(args: argparse.Namespace, device: torch.device) -> list[nn.Module]:
    """Build every ``--model`` on ``device``, frozen, in eval mode, with normalisation inside."""
    names = [name.strip() for name in args.model.split(",") if name.strip()]
    weights = [path.strip() or None for path in args.model_weights.split(",")] if args.model_weights else [None] * len(names)
    if len(weights) != len(names):
        raise InputError(f"--model-weights names {len(weights)} file(s) for {len(names)} model(s); give one per model")
    return [_classifier(name, path, not args.no_download).to(device) for name, path in zip(names, weights)]


def _classifier(name: str, weights: str | None, download: bool) -> nn.Module:
    if name.lower().endswith(MODEL_FILE_SUFFIXES):
        if weights:
            raise InputError(f"--model-weights does not apply to the model file {name}")
        return as_classifier(name)
    return as_classifier(name, weights=weights, download=download)
