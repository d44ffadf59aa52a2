"""The NRP purifier (Naseer et al., CVPR 2020) under the defense interface, static and dynamic."""

from __future__ import annotations

import os

import torch

from nrp.defenses._checks import check_float, check_int
from nrp.purifiers import Purifier, load_network, shipped_weights
from nrp.purifiers.dynamic import DEFAULT_NOISE_EPS, DEFAULT_NOISE_STD
from nrp.purifiers.tiling import DEFAULT_TILE_OVERLAP


def nrp_defense(
    weights: str | os.PathLike | None = None,
    architecture: str | None = None,
    tile_size: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    device: str | torch.device = "cpu",
) -> Purifier:
    """The static NRP defense: ``Purifier(load_network(weights))``, [0, 1] -> [0, 1].

    Args:
        weights: a purifier weights file (this project's, or the authors' ``NRP.pth`` / ``NRP_resG.pth``);
            ``None``: the purifier shipped with the package (:func:`~nrp.purifiers.shipped_weights`).
        architecture: ``"nrp"`` or ``"nrp_resg"`` to check the file against; ``None`` recognises it.
        tile_size: purify images with a side longer than this window by window (pixels); ``None``: whole.
        tile_overlap: context and blend width between windows, pixels.
        device: where the network is loaded.

    Returns:
        a :class:`~nrp.purifiers.Purifier` mapping ``(B, 3, H, W)`` in [0, 1] to ``(B, 3, H, W)`` in [0, 1].

    Example:
        >>> defense = nrp_defense("NRP.pth")  # doctest: +SKIP
        >>> defended = torch.nn.Sequential(defense, classifier)  # doctest: +SKIP
    """
    _check_tiling(tile_size, tile_overlap)
    return Purifier(load_network(weights or shipped_weights(), architecture, map_location=device), tile_size=tile_size, tile_overlap=tile_overlap)


def nrp_dynamic_defense(
    weights: str | os.PathLike | None = None,
    architecture: str | None = None,
    noise_std: float = DEFAULT_NOISE_STD,
    noise_eps: float = DEFAULT_NOISE_EPS,
    generator: torch.Generator | None = None,
    tile_size: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    device: str | torch.device = "cpu",
) -> Purifier:
    """The dynamic NRP defense of the authors' code: purify ``x + N(0, 1) * noise_std`` projected to ``eps``.

    A fresh draw on every call (see :func:`~nrp.purifiers.dynamic_noise`): the noisy input stays within
    ``noise_eps`` (16/255) of the input in L-inf before it is purified.

    Args:
        weights: a purifier weights file, as for :func:`nrp_defense`.
        architecture: ``"nrp"`` or ``"nrp_resg"`` to check the file against; ``None`` recognises it.
        noise_std: standard deviation of the noise, [0, 1] units (0.05 in the authors' code).
        noise_eps: L-inf radius the noisy input is projected into, [0, 1] units (16/255).
        generator: random generator of the noise, for reproducible draws.
        tile_size: as for :func:`nrp_defense`.
        tile_overlap: as for :func:`nrp_defense`.
        device: where the network is loaded.

    Returns:
        a :class:`~nrp.purifiers.Purifier` with ``dynamic=True``, ``(B, 3, H, W)`` in [0, 1] to the same.

    Example:
        >>> defense = nrp_dynamic_defense("NRP.pth", generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    """
    check_float("noise_std", noise_std, 0.0)
    check_float("noise_eps", noise_eps, 0.0, 1.0)
    _check_tiling(tile_size, tile_overlap)
    network = load_network(weights or shipped_weights(), architecture, map_location=device)
    return Purifier(network, dynamic=True, noise_std=noise_std, noise_eps=noise_eps, tile_size=tile_size,
                    tile_overlap=tile_overlap, generator=generator)


def _check_tiling(tile_size: int | None, tile_overlap: int) -> None:
    if tile_size is not None:
        check_int("tile_size", tile_size, 1)
    check_int("tile_overlap", tile_overlap, 0)
