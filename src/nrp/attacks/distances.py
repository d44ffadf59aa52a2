"""Feature distances Delta of Eq. 1: per-sample distance between two feature maps."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from nrp.errors import InputError


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, ``(B, ...) x (B, ...) -> (B,)`` (the authors' SSP code)."""
    return (a - b).pow(2).flatten(1).mean(1)


def mae(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample, ``(B, ...) x (B, ...) -> (B,)`` (the paper's Eq. 5)."""
    return (a - b).abs().flatten(1).mean(1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One minus the cosine similarity of the flattened features per sample, ``-> (B,)`` in [0, 2]."""
    return 1.0 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": mse, "mae": mae, "cosine": cosine}


def get_distance(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The distance registered as ``name``; unknown names raise with the list of known ones."""
    if name not in DISTANCES:
        raise InputError(f"unknown distance '{name}'; known: {', '.join(DISTANCES)}")
    return DISTANCES[name]
