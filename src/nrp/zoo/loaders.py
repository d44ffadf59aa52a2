"""Users' own classifiers: TorchScript and ONNX files, and ``as_classifier`` for anything model-like."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.errors import InputError
from nrp.zoo.onnx_model import OnnxModel
from nrp.zoo.registry import create_model

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
ONNX_SUFFIX = ".onnx"
MODEL_FILE_SUFFIXES = (*TORCHSCRIPT_SUFFIXES, ONNX_SUFFIX)


def load_model_file(path: str | os.PathLike) -> nn.Module:
    """A classifier saved by its user: TorchScript (``.pt``, ``.pth``, ``.ts``) or ONNX (``.onnx``).

    The model must take ``(B, 3, H, W)`` images in [0, 1] and return logits ``(B, 1000)``: resizing and
    normalisation are its own business. TorchScript models come back frozen, in eval mode, on the CPU and
    differentiable; ONNX models run through ``onnxruntime`` and are evaluation-only (see :class:`OnnxModel`).

    Raises:
        InputError: the file is missing, of another type, not loadable as such (a state dict saved as
            ``.pth`` is not a TorchScript model: load it with ``create_model(name, weights=path)``), or
            onnxruntime is not installed for an ONNX file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ONNX_SUFFIX:
        return OnnxModel(path)
    if suffix not in TORCHSCRIPT_SUFFIXES:
        raise InputError(f"{path}: unknown model file type '{suffix}'; expected {', '.join(MODEL_FILE_SUFFIXES)}")
    try:
        with warnings.catch_warnings():
            # Deprecated in favour of torch.export, but it is the format users' scripted models come in.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
            model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not a TorchScript model ({reason}); a state dict of a zoo model loads "
                         f"with create_model(name, weights=path)") from None
    for parameter in model.parameters():  # ScriptModules refuse requires_grad_()
        parameter.requires_grad_(False)
    return model.eval()


def as_classifier(model: nn.Module | str | os.PathLike, **options: Any) -> nn.Module:
    """Whatever names a classifier, as a module from [0, 1] images ``(B, 3, H, W)`` to logits.

    Args:
        model: an ``nn.Module`` (returned as it is, assumed to take [0, 1] images), a path ending in
            ``.pt``/``.pth``/``.ts`` (TorchScript) or ``.onnx`` (:func:`load_model_file`), or a zoo name
            (:func:`create_model`).
        options: keyword arguments of :func:`create_model` (``pretrained``, ``weights``, ``download``,
            ``input_size``, ``crop_pct``); for a zoo name only.

    Raises:
        InputError: options given with a module or a file, or anything :func:`load_model_file` or
            :func:`create_model` raises.

    Example:
        >>> as_classifier("resnet18", pretrained=False).name
        'resnet18'
    """
    if isinstance(model, nn.Module):
        if options:
            raise InputError(f"options {', '.join(sorted(options))} apply to zoo names only, not to a module")
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"expected a model, a zoo name or a model file, got {type(model).__name__}")
    if Path(model).suffix.lower() in MODEL_FILE_SUFFIXES:
        if options:
            raise InputError(f"options {', '.join(sorted(options))} apply to zoo names only, not to the file {model}")
        return load_model_file(model)
    return create_model(os.fspath(model), **options)
