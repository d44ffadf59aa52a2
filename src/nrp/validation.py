"""Checking inputs once, at the boundary: numeric ranges, finite values, output folders, smallest inputs.

Command-line flags use :class:`Range` objects as their argparse ``type``, so a bad value is refused while
parsing, with the flag's name, before anything is loaded; config-file values go through :meth:`Range.check`
with the key's name. Both end as exit code 2 (bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nrp.errors import InputError, InputTooSmallError, UsageError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


@dataclass(frozen=True)
class Range:
    """The values a number may take: its kind (int or float, floats always finite) and bounds.

    An instance is an argparse ``type``: ``parser.add_argument("--lr", type=POSITIVE)`` parses the text and
    refuses ``nan``, ``inf``, ``0`` and ``-1`` with ``argument --lr: expected a finite number > 0, got 'nan'``.

    Attributes:
        kind: ``int`` or ``float``.
        minimum: smallest accepted value (``None``: no bound).
        maximum: largest accepted value (``None``: no bound).
        open_minimum: ``minimum`` itself is refused (``> minimum`` rather than ``>= minimum``).
    """

    kind: type = float
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False

    def describe(self) -> str:
        """What is accepted, in words: ``an integer in [0, 9223372036854775807]``, ``a finite number > 0``."""
        noun = "an integer" if self.kind is int else "a finite number"
        low, high = _show(self.minimum), _show(self.maximum)
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} in {'(' if self.open_minimum else '['}{low}, {high}]"
        if self.minimum is not None:
            return f"{noun} {'>' if self.open_minimum else '>='} {low}"
        if self.maximum is not None:
            return f"{noun} <= {high}"
        return noun

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (already a number) is of the right kind, finite and within the bounds."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float: finite, but only an int range can hold it
            finite = self.kind is int
        if not finite:
            return False
        if self.minimum is not None and (value < self.minimum or (self.open_minimum and value == self.minimum)):
            return False
        return self.maximum is None or value <= self.maximum

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` if accepted, else raise :class:`UsageError` naming ``name`` (a flag or config key)."""
        if not self.accepts(value):
            raise UsageError(f"{name} must be {self.describe()}, got {value!r}")
        return value

    def __call__(self, text: str) -> int | float:
        """Parse a flag's text (argparse ``type``); refusals become ``argparse.ArgumentTypeError``."""
        try:
            value = self.kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got '{text}'") from None
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got '{text}'")
        return value

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return self.kind.__name__


def _show(bound: float | None) -> str:
    return str(bound) if bound is None or isinstance(bound, int) else f"{bound:g}"


SEED = Range(int, 0, SEED_MAX)
COUNT = Range(int, 1)  # sizes, widths, blocks, steps, batch sizes
NON_NEGATIVE_INT = Range(int, 0)
FINITE = Range(float)
NON_NEGATIVE = Range(float, 0.0)
POSITIVE = Range(float, 0.0, open_minimum=True)  # learning rates, step sizes
FRACTION = Range(float, 0.0, 1.0)
PIXELS = Range(float, 0.0, 255.0)  # budgets in 0-255 units
IMAGE_SIDE = Range(int, 1, 8192)  # a side of square images an evaluation stores, px
LABEL_OFFSET = Range(int, -1000, 1000)  # subtracted from every label (1 for 1-based, 1001-class labels)


def number_list(item: Range) -> Callable[[str], list[float]]:
    """An argparse ``type`` for comma-separated numbers, each checked by ``item``."""

    def parse(text: str) -> list[float]:
        return [item(part.strip()) for part in text.split(",") if part.strip()]

    parse.__name__ = "list"
    return parse


def check_finite_values(values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Refuse NaN or infinity in any float (or list of floats) of ``values``, naming it by ``names[key]`` or the key."""
    names = names or {}
    for key, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise UsageError(f"{names.get(key, key)} must be finite, got {value!r}")


def check_output_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Check, before any work, that the output folder ``path`` exists or can be created, and can be written.

    Nothing is left behind: a probe file is created and removed in ``path`` or, when it does not exist yet,
    in its nearest existing ancestor (the folder is created later, by the first write).

    Raises:
        InputError: ``path`` or an ancestor is an existing file, or the folder cannot be written (with the reason).
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = f"{path}" if existing == path else f"{path}: {existing}"
        raise InputError(f"{flag} {what} is an existing file, not a folder; choose another {flag}")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".nrp-probe-"):
            pass
    except OSError as error:
        where = "" if existing == path else f" (in {existing})"
        raise InputError(f"{flag} {path} cannot be written{where}: {error.strerror or error}") from None
    return path


# What a network raises on an input smaller than its kernels or pools. Not the other NRPErrors: those are
# argument checks (an unknown layer, an out-of-range option) that fail at every size and must be reported as such.
_TOO_SMALL_ERRORS = (RuntimeError, ValueError, InputTooSmallError)


def minimum_input_size(network: Callable[[torch.Tensor], Any], device: torch.device | str = "cpu",
                       limit: int = 1024, gradients: bool = False) -> int:
    """The smallest side ``s`` such that ``network`` runs on a ``(1, 3, s, s)`` batch of zeros.

    Found by doubling from 1 and then bisecting (networks that run at some size run at every larger one);
    gradients are off unless ``gradients`` (an attack needs them). Used to skip images too small for a network
    with a warning, rather than letting one 1x1 image abort a whole run.

    Raises:
        InputError: ``network`` fails even at ``limit`` pixels (so the failure is not about size).
    """
    def runs(side: int) -> bool:
        # torch.fx's traced modules (the truncated feature extractors) print the whole traceback of a failed
        # call to stderr before raising; a failed probe is expected here, so that text is dropped.
        try:
            with torch.set_grad_enabled(gradients), contextlib.redirect_stderr(io.StringIO()):
                network(torch.zeros(1, 3, side, side, device=device))
        except _TOO_SMALL_ERRORS:
            return False
        return True

    high = 1
    while not runs(high):
        if high >= limit:
            raise InputError(f"the network fails on every input size up to {limit} px")
        high = min(2 * high, limit)
    low = high // 2  # fails (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high
