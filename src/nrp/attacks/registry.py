"""The attack registry: a plain dictionary from lower-case paper names to attack functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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


def get_attack(name: str) -> Callable:
    """The attack registered as ``name`` (e.g. ``"mi_fgsm"``); unknown names raise with the list of known ones."""
    if name not in ATTACKS:
        raise InputError(f"unknown attack '{name}'; known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name]
