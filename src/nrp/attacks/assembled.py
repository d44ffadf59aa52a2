"""Attacks assembled from a shared parameter template and their own knobs, each knob declared once.

The input-transformation attacks (BSR, Admix) are MI-FGSM on the gradient summed over the copies that their
``*_copies`` function makes; the feature-level attacks (FIA, NAA, ILPD) are MI-FGSM on an objective that their
setup function builds. Each public attack's signature is its family's template (the calling convention of
docs/attacks.md) with the keyword parameters of that one function inserted, so ``inspect.signature`` and
``nrp attack NAME --help`` show every knob with its default while the knob itself is written only once.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import torch

TAIL = ("target", "generator")  # template parameters that stay last, after the attack's own knobs


def assemble(
    name: str, doc: str, template: Callable, knobs: Callable | tuple[Callable, ...],
    run: Callable[[dict[str, Any], dict[str, Any]], torch.Tensor], drop: tuple[str, ...] = (),
) -> Callable[..., torch.Tensor]:
    """The attack ``name``: ``template``'s parameters plus the keyword-only ones of ``knobs``, computed by ``run``.

    Args:
        name: the function's ``__name__`` (the registered name).
        doc: its docstring (summary line, paper, arguments).
        template: a function whose signature holds the family's shared parameters (e.g. :func:`mi_fgsm`).
        knobs: a function (or several) whose keyword-only parameters not in ``template`` are the attack's own,
            inserted before ``template``'s ``target`` and ``generator``.
        run: ``(template arguments, own knobs) -> adversarial images``, both as ``{name: value}`` with defaults
            filled.
        drop: ``template`` parameters the attack does not take (e.g. ``target`` for an untargeted attack).

    Returns:
        a function with that signature; a call binds its arguments to it (unknown or missing ones raise
        ``TypeError`` as for any function) and hands them to ``run``.
    """
    # Annotations resolved in each function's own module, so typing.get_type_hints works on the result.
    knobs = knobs if isinstance(knobs, tuple) else (knobs,)
    hints = {key: value for function in (*knobs, template) for key, value in typing.get_type_hints(function).items()}
    shared = [p for p in _resolved(template, hints) if p.name not in drop]
    taken = {p.name for p in shared}
    own = [p for function in knobs for p in _resolved(function, hints)
           if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in taken]
    split = next((i for i, p in enumerate(shared) if p.name in TAIL), len(shared))
    signature = inspect.Signature(shared[:split] + own + shared[split:], return_annotation=torch.Tensor)
    own_names = [p.name for p in own]

    def attack(*args: Any, **kwargs: Any) -> torch.Tensor:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        return run(arguments, {key: arguments.pop(key) for key in own_names})

    attack.__signature__ = signature  # type: ignore[attr-defined]
    attack.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()} | {"return": torch.Tensor}
    attack.__name__ = attack.__qualname__ = name
    attack.__doc__ = doc
    attack.__module__ = knobs[0].__module__
    return attack


def _resolved(function: Callable, hints: dict[str, Any]) -> list[inspect.Parameter]:
    """``function``'s parameters with their annotations replaced by the resolved ``hints``."""
    return [p.replace(annotation=hints.get(p.name, p.annotation)) for p in inspect.signature(function).parameters.values()]
