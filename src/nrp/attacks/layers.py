"""Reading and rewriting one intermediate layer of a classifier, for the feature-level attacks (FIA, NAA, ILPD).

Layers are named as ``model.get_submodule`` names them (``"network.features.15"``, ``"layer2.3"``); the
attacks take the name, so every registered attack keeps the ``(model, x, y, eps, ...)`` convention.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from nrp.errors import InputError


class _Reached(Exception):
    """Raised by the hook to end a forward pass once the layer's output is known (later layers are not needed)."""


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The submodule of ``model`` named ``layer``; an unknown name raises with a few valid names."""
    if not isinstance(model, nn.Module):
        raise InputError(f"feature-level attacks need an nn.Module to find layer '{layer}' in, got {type(model).__name__}")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise InputError(f"model has no layer '{layer}'; its layers include: {shown}") from None


class LayerOutput(nn.Module):
    """``model`` cut at ``layer``: its forward returns that layer's output and runs no layer after it.

    Args:
        model: a classifier from [0, 1] images ``(B, 3, H, W)``; its mode is left as it is.
        layer: submodule name, see :func:`find_layer`.

    Shapes:
        ``(B, 3, H, W)`` -> the layer's output, e.g. ``(B, C', H', W')``.
    """

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        self.model, self.layer = model, find_layer(model, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captured.append(output)
            raise _Reached

        handle = self.layer.register_forward_hook(hook)
        try:
            self.model(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if not captured:
            raise InputError("the chosen layer was not reached by the model's forward pass")
        return captured[0]


def logits_and_layer(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(x), output of layer)`` from one forward pass."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, captured[0]


@contextmanager
def replaced_output(layer: nn.Module, replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Inside the block, ``layer``'s output ``o`` is replaced by ``replace(o)`` in every forward pass."""
    handle = layer.register_forward_hook(lambda module, inputs, output: replace(output))
    try:
        yield
    finally:
        handle.remove()
