"""The defense registry: a plain dictionary from names to factories of [0, 1] -> [0, 1] modules."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nrp.defenses.bit_depth import BitDepthReduction
from nrp.defenses.gaussian import GaussianBlur
from nrp.defenses.jpeg import JpegCompression
from nrp.defenses.jpeg_differentiable import JpegDifferentiable
from nrp.defenses.median import MedianBlur
from nrp.defenses.purifier import (
    check_nrp_defense,
    check_nrp_dynamic_defense,
    check_nrp_lite_shipped_defense,
    check_nrp_lite_shipped_dynamic_defense,
    nrp_defense,
    nrp_dynamic_defense,
    nrp_lite_shipped_defense,
    nrp_lite_shipped_dynamic_defense,
)
from nrp.defenses.random_resize_pad import RandomResizePad
from nrp.defenses.tvm import DEFAULT_KEEP_PROB, DEFAULT_LAMB, DEFAULT_NORM, DEFAULT_STEPS, TVM, lamb_from_weight
from nrp.errors import InputError

DEFENSES: dict[str, Callable[..., nn.Module]] = {}
CHECKS: dict[str, Callable[..., Any]] = {}
"""Each defense's argument checks, run by :func:`check_defense`: the factory itself where building is cheap
(the modules check their arguments when built), else a function of the factory's signature that loads nothing."""


def register_defense(name: str, factory: Callable[..., nn.Module], check: Callable[..., Any] | None = None) -> None:
    """Add ``factory`` (keyword parameters -> module) under ``name``; a taken name raises, listing the known ones.

    ``check`` takes the factory's parameters and raises what the factory would for them without loading any
    weights or model; leave it out for a factory that loads nothing (it is then its own check).
    """
    if name in DEFENSES:
        raise ValueError(f"defense '{name}' is already registered; known: {', '.join(sorted(DEFENSES))}")
    DEFENSES[name] = factory
    CHECKS[name] = factory if check is None else check


def check_defense(name: str, **params: Any) -> None:
    """Refuse what :func:`create_defense` would refuse for these ``params``, loading no weights or model.

    Raises:
        InputError: as :func:`create_defense`; an out-of-range value is a
            :class:`~nrp.errors.ParameterError` whose ``parameter`` names it (``weights`` when it is missing).

    Example:
        >>> check_defense("median", window=4)
        Traceback (most recent call last):
        nrp.errors.ParameterError: window must be an odd integer >= 1, got 4
    """
    _check_names(name, params)
    CHECKS[name](**params)


def create_defense(name: str, **params: Any) -> nn.Module:
    """Build the defense registered as ``name`` with keyword ``params``.

    Raises:
        InputError: an unknown name (the message lists the known ones), a parameter the defense does not
            take (the message lists those it takes), a missing required one (``weights`` of the NRP
            defenses), or a value out of range (the message names it).

    Example:
        >>> defense = create_defense("median", window=3)
        >>> defense(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """
    _check_names(name, params)
    return DEFENSES[name](**params)


def _check_names(name: str, params: dict[str, Any]) -> None:
    """A registered ``name``; ``params`` among its factory's, with every required one."""
    if name not in DEFENSES:
        raise InputError(f"unknown defense '{name}'; known: {', '.join(sorted(DEFENSES))}")
    factory = DEFENSES[name]
    parameters = [p for p in inspect.signature(factory).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = [p.name for p in parameters]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(f"defense '{name}' takes no parameter {', '.join(repr(p) for p in unknown)}; "
                         f"accepted: {', '.join(accepted) or 'none'}")
    missing = [p.name for p in parameters if p.default is p.empty and p.name not in params]
    if missing:
        raise InputError(f"defense '{name}' needs {', '.join(repr(p) for p in missing)}")


def no_defense() -> nn.Identity:
    """The undefended baseline ("none"): images pass unchanged."""
    return nn.Identity()


def tvm_defense(
    weight: float | None = None,
    lamb: float | None = None,
    keep_prob: float = DEFAULT_KEEP_PROB,
    norm: int = DEFAULT_NORM,
    steps: int = DEFAULT_STEPS,
    generator: torch.Generator | None = None,
) -> TVM:
    """:class:`~nrp.defenses.TVM` from either the paper's ``weight`` (10 or 30) or ``lamb`` (default 0.03)."""
    if weight is not None and lamb is not None:
        raise InputError(f"give the TVM either weight (got {weight!r}) or lamb (got {lamb!r}), not both")
    if weight is not None:
        lamb = lamb_from_weight(weight)
    return TVM(DEFAULT_LAMB if lamb is None else lamb, keep_prob, norm, steps, generator)


register_defense("none", no_defense)
register_defense("jpeg", JpegCompression)
register_defense("jpeg_differentiable", JpegDifferentiable)
register_defense("tvm", tvm_defense)
register_defense("median", MedianBlur)
register_defense("random_resize_pad", RandomResizePad)
register_defense("bit_depth", BitDepthReduction)
register_defense("gaussian", GaussianBlur)
register_defense("nrp", nrp_defense, check_nrp_defense)
register_defense("nrp_dynamic", nrp_dynamic_defense, check_nrp_dynamic_defense)
register_defense("nrp_lite_shipped", nrp_lite_shipped_defense, check_nrp_lite_shipped_defense)
register_defense("nrp_lite_shipped_dynamic", nrp_lite_shipped_dynamic_defense, check_nrp_lite_shipped_dynamic_defense)
