"""The NRP purifier (Naseer et al., CVPR 2020) under the defense interface, static and dynamic.

``nrp`` and ``nrp_dynamic`` purify with a weights file the caller names (the authors' ``NRP.pth``, or one from
``nrp train``); they never fall back to another purifier. The NRP-Lite that ships inside the package is its own
pair of defenses, ``nrp_lite_shipped`` and ``nrp_lite_shipped_dynamic``, so tables say which purifier ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from nrp.defenses._checks import check_float, check_int
from nrp.errors import ParameterError
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
            required (the shipped NRP-Lite is the defense :func:`nrp_lite_shipped_defense`).
        architecture: a name in :data:`~nrp.purifiers.PURIFIERS` (``"nrp"``, ``"nrp_lite"``, ``"nrp_ms"``,
            ``"nrp_resg"``) to check the file against; ``None`` recognises it.
        tile_size: purify images with a side longer than this window by window (pixels); ``None``: whole.
        tile_overlap: context and blend width between windows, pixels.
        device: where the network is loaded.

    Returns:
        a :class:`~nrp.purifiers.Purifier` mapping ``(B, 3, H, W)`` in [0, 1] to ``(B, 3, H, W)`` in [0, 1].

    Raises:
        ParameterError: no ``weights``, or a tiling out of range (:func:`check_nrp_defense`).

    Example:
        >>> defense = nrp_defense("NRP.pth")  # doctest: +SKIP
        >>> defended = torch.nn.Sequential(defense, classifier)  # doctest: +SKIP
    """
    check_nrp_defense(weights=weights, tile_size=tile_size, tile_overlap=tile_overlap)
    network = load_network(weights, architecture, map_location=device)
    return Purifier(network, tile_size=tile_size, tile_overlap=tile_overlap)


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
        weights: a purifier weights file, as for :func:`nrp_defense` (required).
        architecture: a name in :data:`~nrp.purifiers.PURIFIERS` (``"nrp"``, ``"nrp_lite"``, ``"nrp_ms"``,
            ``"nrp_resg"``) to check the file against; ``None`` recognises it.
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
    check_nrp_dynamic_defense(weights=weights, noise_std=noise_std, noise_eps=noise_eps, tile_size=tile_size,
                              tile_overlap=tile_overlap)
    network = load_network(weights, architecture, map_location=device)
    return Purifier(network, dynamic=True, noise_std=noise_std, noise_eps=noise_eps, tile_size=tile_size,
                    tile_overlap=tile_overlap, generator=generator)


def nrp_lite_shipped_defense(
    tile_size: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    device: str | torch.device = "cpu",
) -> Purifier:
    """The NRP-Lite purifier shipped with the package (``nrp_lite_effl0_stage2.safetensors``), static; not the paper's NRP.

    Arguments as for :func:`nrp_defense`; see docs/offline_benchmark.md for how it was trained.
    """
    return nrp_defense(shipped_weights(), "nrp_lite", tile_size, tile_overlap, device)


def nrp_lite_shipped_dynamic_defense(
    noise_std: float = DEFAULT_NOISE_STD,
    noise_eps: float = DEFAULT_NOISE_EPS,
    generator: torch.Generator | None = None,
    tile_size: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    device: str | torch.device = "cpu",
) -> Purifier:
    """The shipped NRP-Lite with the authors' dynamic noise (as :func:`nrp_dynamic_defense`); not the paper's NRP."""
    return nrp_dynamic_defense(shipped_weights(), "nrp_lite", noise_std, noise_eps, generator, tile_size, tile_overlap,
                               device)


# The checks each defense above runs before it loads anything, callable without building it: an experiment
# file and the command line check parameters with them before any work (nrp.defenses.check_defense, which
# has already refused names the defense does not take).


def purifier_check(required: str | None, noise: bool) -> Callable[..., None]:
    """A check of a purifier defense's keyword parameters that loads nothing: ``weights`` given (when
    ``required`` names the defense that needs it), the dynamic noise (when ``noise``) and the tiling in range.
    The check raises :class:`~nrp.errors.ParameterError` naming the parameter (``weights`` when it is missing).
    """

    def check(**params: Any) -> None:
        if required is not None:
            _required(params.get("weights"), required)
        if noise:
            _check_noise(params.get("noise_std", DEFAULT_NOISE_STD), params.get("noise_eps", DEFAULT_NOISE_EPS))
        _check_tiling(params.get("tile_size"), params.get("tile_overlap", DEFAULT_TILE_OVERLAP))

    return check


check_nrp_defense = purifier_check("nrp", noise=False)
check_nrp_dynamic_defense = purifier_check("nrp_dynamic", noise=True)
check_nrp_lite_shipped_defense = purifier_check(None, noise=False)
check_nrp_lite_shipped_dynamic_defense = purifier_check(None, noise=True)


def _required(weights: str | os.PathLike | None, name: str) -> None:
    if weights is None:
        raise ParameterError(f"the {name} defense needs a purifier weights file (weights=FILE), e.g. the "
                             f"authors' NRP.pth; the NRP-Lite shipped with this package is the defense "
                             f"{name.replace('nrp', 'nrp_lite_shipped')}", "weights")


def _check_noise(noise_std: float, noise_eps: float) -> None:
    check_float("noise_std", noise_std, 0.0)
    check_float("noise_eps", noise_eps, 0.0, 1.0)


def _check_tiling(tile_size: int | None, tile_overlap: int) -> None:
    if tile_size is not None:
        check_int("tile_size", tile_size, 1)
    check_int("tile_overlap", tile_overlap, 0)
