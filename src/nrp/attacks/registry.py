"""The attack registry: a plain dictionary from lower-case paper names to attack functions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from nrp.errors import InputError

Attack = TypeVar("Attack", bound=Callable)

ATTACKS: dict[str, Callable] = {}


def register(name: str) -> Callable[[Attack], Attack]:
    """Decorator adding a function to :data:`ATTACKS` under ``name``; a name already taken raises."""

    def add(function: Attack) -> Attack:
        if name in ATTACKS:
            raise InputError(f"attack '{name}' is already registered; registered: {', '.join(sorted(ATTACKS))}")
        ATTACKS[name] = function
        return function

    return add


def variant(function: Attack, name: str, summary: str, **settings: Any) -> Attack:
    """``function`` with other defaults under its own name: a named setting of one attack, not a second copy.

    The variant's signature shows the new defaults (``nrp attack NAME`` reads its flags off it), its
    docstring is ``summary`` followed by a pointer to ``function``; any argument given at the call wins over
    ``settings``. Only keyword-only parameters can be set, so positional calls mean what they mean for
    ``function``.

    Example:
        >>> def attack(x, *, steps=1):
        ...     return x * steps
        >>> ten = variant(attack, "ten", "Ten steps.", steps=10)
        >>> ten(2), ten(2, steps=3), str(inspect.signature(ten))
        (20, 6, '(x, *, steps=10)')
    """
    signature = inspect.signature(function)
    keyword_only = {p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(settings) - keyword_only)
    if unknown:
        raise InputError(f"{function.__name__} has no keyword-only parameter {', '.join(unknown)} to set")

    @functools.wraps(function)
    def attack(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **{**settings, **kwargs})

    attack.__signature__ = signature.replace(parameters=[
        p.replace(default=settings.get(p.name, p.default)) for p in signature.parameters.values()
    ])
    attack.__name__ = attack.__qualname__ = name
    shown = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    attack.__doc__ = f"{summary}\n\n:func:`{function.__module__}.{function.__name__}` with ``{shown}``."
    return attack  # type: ignore[return-value]


def get_attack(name: str) -> Callable:
    """The attack registered as ``name`` (e.g. ``"mi_fgsm"``); unknown names raise with the list of known ones."""
    if name not in ATTACKS:
        raise InputError(f"unknown attack '{name}'; known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name]
