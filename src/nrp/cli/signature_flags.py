"""Command-line flags read off a function's keyword arguments, so each attack or defense shows its own knobs."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Collection
from typing import Any

from nrp.cli.flag_help import parameter_help
from nrp.schema import signature_specs
from nrp.units import PIXEL_SCALE
from nrp.validation import FINITE

ALIASES = {"tile_size": ("--tile",)}
"""Extra spellings of a parameter's flag, so a knob has one name across commands (``nrp purify --tile``)."""


def tunable_parameters(function: Callable, handled: Collection[str]) -> list[inspect.Parameter]:
    """The keyword parameters of ``function`` that become flags: all but those the command fills itself and
    those an experiment file could not set either (:func:`~nrp.schema.signature_specs`: a tensor, such as
    ILA's ``baseline`` images, a module, a callable), which only Python can pass."""
    settable = signature_specs(function, handled)
    return [p for p in inspect.signature(function).parameters.values() if p.name in settable]


def add_signature_flags(
    parser: argparse.ArgumentParser, function: Callable, handled: Collection[str], pixel: Collection[str]
) -> None:
    """Add ``--name`` for every tunable parameter; parameters without a default become required flags.

    Each flag's help says what it does (:func:`~nrp.cli.flag_help.parameter_help`) and its default, in
    0-255 units for the ``pixel`` parameters.
    """
    for parameter in tunable_parameters(function, handled):
        flags = ["--" + parameter.name.replace("_", "-"), *ALIASES.get(parameter.name, ())]
        required = parameter.default is inspect.Parameter.empty
        kind = _flag_type(parameter)
        units = ", 0-255 units" if parameter.name in pixel else ""
        what = parameter_help(function, parameter.name) or parameter.name.replace("_", " ")
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, dest=parameter.name,
                                help=f"{what} (default: {parameter.default})")
            continue
        shown = parameter.default
        if parameter.name in pixel and isinstance(shown, (int, float)):
            shown = f"{shown * PIXEL_SCALE:g}"
        if required:
            what += f" (required{units})"
        elif shown is not None:
            what += f" (default: {shown}{units})"
        elif units:
            what += f" ({units.removeprefix(', ')})"
        parser.add_argument(*flags, type=kind, default=None, required=required, dest=parameter.name, help=what)


def read_signature_flags(
    args: argparse.Namespace, function: Callable, handled: Collection[str], pixel: Collection[str]
) -> dict[str, Any]:
    """The keyword arguments for ``function`` from the flags that were given, pixel units turned into [0, 1]."""
    values = {}
    for parameter in tunable_parameters(function, handled):
        value = getattr(args, parameter.name)
        if value is not None:
            values[parameter.name] = value / PIXEL_SCALE if parameter.name in pixel else value
    return values


def _flag_type(parameter: inspect.Parameter) -> Callable:
    """``bool``, ``int``, ``str``, or :data:`nrp.validation.FINITE` for floats (NaN and infinity refused)."""
    default = parameter.default
    if isinstance(default, float):
        return FINITE
    if isinstance(default, (bool, int, str)):
        return type(default)
    annotation = str(parameter.annotation)
    if "bool" in annotation:
        return bool
    if "str" in annotation or "PathLike" in annotation:
        return str
    if "int" in annotation and "float" not in annotation:
        return int
    return FINITE
