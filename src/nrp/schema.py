"""Typed checking of configuration values read from files: each bad value is one line naming where it is.

A *spec* checks one value and returns it normalised (an ``int`` given for a float becomes a ``float``, a
comma-separated string given for a list becomes the list); a bad value raises :class:`Problem` with its path
(``attacks[0].steps``) and what was expected. Specs come from three places: written out where a key needs a
range or a set of names (:class:`Number`, :class:`Text`), derived from a dataclass's type hints
(:func:`section_of`), or derived from a function's signature (:func:`signature_specs`), so a new attack or
defense parameter needs no schema edit. :meth:`Section.check_all` checks every key of a mapping, and
:class:`SchemaError` reports all its problems in one line (exit code 2).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nrp.errors import NRPError, UsageError
from nrp.validation import FINITE, Range

SHOWN_CHARACTERS = 60  # a value quoted in a message is cut to this length
SHOWN_NAMES = 6  # a description lists the accepted names when there are at most this many


class Problem(Exception):
    """One bad value: where it is (``attacks[0].eps``) and what is wrong with it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class SchemaError(UsageError):
    """Bad values of a configuration file, as one line: the first problem in full, then where the others are.

    ``FILE: attacks[0].eps: expected a finite number in [0, 255], got 'abc' (2 more: batch_size, targets[1])``
    """

    def __init__(self, problems: Sequence[Problem], where: str = "") -> None:
        first = problems[0]
        line = f"{where}: {first}" if where else str(first)
        if len(problems) > 1:
            line += f" ({len(problems) - 1} more: {', '.join(p.path or '(top level)' for p in problems[1:])})"
        super().__init__(line)
        self.problems = list(problems)


def shown(value: Any) -> str:
    """``value`` as a message quotes it: its repr, cut to :data:`SHOWN_CHARACTERS`."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long to print, a self-referencing YAML structure
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS - 3]}..."


def join(path: str, key: str) -> str:
    """The path of ``key`` inside ``path``: ``attacks[0]`` + ``steps`` -> ``attacks[0].steps``."""
    return f"{path}.{key}" if path else key


class Spec(Protocol):
    """What a value must be: ``check`` returns it normalised or raises :class:`Problem`; ``describe`` says it."""

    def check(self, value: Any, path: str) -> Any: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Number:
    """An int or a finite float within :class:`~nrp.validation.Range` ``bounds`` (a bool is not a number)."""

    bounds: Range = FINITE

    def check(self, value: Any, path: str) -> int | float:
        if not self.bounds.accepts(value):
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        return float(value) if self.bounds.kind is float else value

    def describe(self) -> str:
        return self.bounds.describe()


@dataclass(frozen=True)
class Text:
    """A non-empty string; with ``names``, one of them (``kind`` names what they are in the message)."""

    what: str = "a text"
    names: Callable[[], Sequence[str]] | None = None
    kind: str = "name"
    # A predicate that also accepts names outside ``names`` (a torchvision model name), with their description.
    also: tuple[Callable[[str], bool], str] | None = None

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        if self.names is not None:
            known = list(self.names())
            if value not in known and not (self.also and self.also[0](value)):
                extra = f" ({self.also[1]})" if self.also else ""
                raise Problem(path, f"unknown {self.kind} {value!r}; known: {', '.join(known)}{extra}")
        return value

    def describe(self) -> str:
        shown_names = list(self.names()) if self.names is not None and self.also is None else []
        return f"{self.what}: {', '.join(shown_names)}" if 0 < len(shown_names) <= SHOWN_NAMES else self.what


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false``."""

    def check(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Nullable:
    """``null`` or what ``spec`` accepts."""

    spec: Spec

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.spec.check(value, path)

    def describe(self) -> str:
        return f"{self.spec.describe()} or null"


@dataclass(frozen=True)
class AnyOf:
    """What the first of ``specs`` to accept the value accepts."""

    specs: tuple[Spec, ...]

    def check(self, value: Any, path: str) -> Any:
        for spec in self.specs:
            try:
                return spec.check(value, path)
            except Problem:
                continue
        raise Problem(path, f"expected {self.describe()}, got {shown(value)}")

    def describe(self) -> str:
        return " or ".join(spec.describe() for spec in self.specs)


@dataclass(frozen=True)
class Plain:
    """Any scalar a file can hold (number, text, bool, null) or a list of them; not a mapping."""

    def check(self, value: Any, path: str) -> Any:
        items = value if isinstance(value, list) else [value]
        if not all(item is None or isinstance(item, (bool, int, float, str)) for item in items):
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        return value

    def describe(self) -> str:
        return "a number, text, true/false or a list of them"


@dataclass(frozen=True)
class ListOf:
    """A list of ``item``; ``"a,b"`` is ``[a, b]`` when ``commas``, and a lone item a list of one when ``single``."""

    item: Spec
    commas: bool = False
    single: bool = False
    non_empty: bool = False

    def check(self, value: Any, path: str) -> list[Any]:
        if isinstance(value, str) and self.commas:
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif self.single and not isinstance(value, (list, tuple)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        if self.non_empty and not value:
            raise Problem(path, f"expected {self.describe()}, got an empty list")
        return [self.item.check(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def describe(self) -> str:
        return f"{'a non-empty' if self.non_empty else 'a'} list, each {self.item.describe()}"


@dataclass(frozen=True)
class MapOf:
    """A mapping from names (non-empty strings) to values of ``value``."""

    value: Spec
    key: str = "name"

    def check(self, mapping: Any, path: str) -> dict[str, Any]:
        if not isinstance(mapping, Mapping):
            raise Problem(path, f"expected {self.describe()}, got {shown(mapping)}")
        checked = {}
        for key, item in mapping.items():
            if not isinstance(key, str) or not key.strip():
                raise Problem(path, f"expected {self.key}s as keys, got {shown(key)}")
            checked[key] = self.value.check(item, join(path, key))
        return checked

    def describe(self) -> str:
        return f"a mapping from {self.key}s to values, each {self.value.describe()}"


@dataclass(frozen=True)
class Section:
    """A mapping with known keys, each checked by its spec; ``required`` keys must be present.

    Keys may be written with dashes (``batch-size``). An unknown key is refused, listing the known ones.
    """

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    then: Callable[[dict[str, Any], str], None] | None = None  # checks across keys, on the checked values

    def check(self, value: Any, path: str) -> dict[str, Any]:
        values, problems = self.check_all(value, path)
        if problems:
            raise problems[0]
        return values

    def check_all(self, value: Any, path: str) -> tuple[dict[str, Any], list[Problem]]:
        """Every key checked; the normalised values and every problem found (all keys, not only the first)."""
        if not isinstance(value, Mapping):
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        values, problems = {}, []
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(path, f"key {shown(key)} is not a name; known: {', '.join(self.fields)}"))
                continue
            name = key.replace("-", "_")
            if name not in self.fields:
                problems.append(Problem(join(path, key), f"unknown key; known: {', '.join(self.fields)}"))
                continue
            try:
                values[name] = self.fields[name].check(item, join(path, name))
            except Problem as problem:
                problems.append(problem)
        problems += [Problem(path, f"missing '{key}'") for key in self.required if key not in values]
        if not problems and self.then is not None:
            try:
                self.then(values, path)
            except Problem as problem:
                problems.append(problem)
        return values, problems

    def describe(self) -> str:
        return f"a mapping of {', '.join(self.fields)}"


# --- specs derived from type hints --------------------------------------------------------------------------


def hint_spec(hint: Any) -> Spec | None:
    """The spec of a type hint a file can satisfy (``int``, ``float | None``, ``list[str]``, ``str | os.PathLike``);
    ``None`` for a hint no file value can (a tensor, a module, a generator, a callable)."""
    if hint is None or hint is Any or hint is inspect.Parameter.empty:
        return Plain()
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        specs = []
        for argument in arguments:
            spec = None if argument is type(None) else hint_spec(argument)
            if spec is not None and spec not in specs:
                specs.append(spec)
        if not specs:
            return None
        spec = specs[0] if len(specs) == 1 else AnyOf(tuple(specs))
        return Nullable(spec) if type(None) in arguments else spec
    if hint is bool:
        return Flag()
    if hint is int:
        return Number(Range(int))
    if hint is float:
        return Number(FINITE)
    if hint in (str, os.PathLike) or origin is os.PathLike:
        return Text()
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        item = hint_spec(arguments[0]) if arguments else Plain()
        return None if item is None else ListOf(item)
    if origin in (dict, Mapping) or hint is dict:
        value = hint_spec(arguments[1]) if len(arguments) == 2 else Plain()
        return None if value is None else MapOf(value)
    return None


def section_of(cls: type, refine: Mapping[str, Spec] | None = None, skip: Sequence[str] = (),
               then: Callable[[dict[str, Any], str], None] | None = None) -> Section:
    """The :class:`Section` of a dataclass: one key per field, its spec from ``refine`` or the field's type hint;
    fields without a default are required."""
    refine = refine or {}
    hints = typing.get_type_hints(cls)
    fields, required = {}, []
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        spec = refine.get(item.name) or hint_spec(hints[item.name])
        if spec is None:
            raise TypeError(f"{cls.__name__}.{item.name}: no file value fits {hints[item.name]}; refine it")
        fields[item.name] = spec
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            required.append(item.name)
    return Section(fields, tuple(required), then)


@dataclass(frozen=True)
class Parameter:
    """One keyword parameter a file may set: its spec and whether it must be given."""

    spec: Spec
    required: bool = False


def signature_specs(function: Callable, supplied: Sequence[str] = (),
                    refine: Mapping[str, Spec] | None = None) -> dict[str, Parameter]:
    """The parameters of ``function`` a file may set, with specs from its type hints (a class: its ``__init__``).

    Parameters in ``supplied`` (the pipeline passes them: the model, the images, ``eps``, the generator) and
    parameters whose hint no file value fits are left out; ``refine`` narrows a spec by parameter name (a range).
    """
    target = function.__init__ if inspect.isclass(function) else function
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # a hint naming what cannot be imported: check by kind only
        hints = {}
    refine = refine or {}
    parameters = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) or parameter.name in supplied:
            continue
        spec = hint_spec(hints.get(parameter.name))
        if spec is None:
            continue
        if parameter.name in refine:
            spec = Nullable(refine[parameter.name]) if isinstance(spec, Nullable) else refine[parameter.name]
        parameters[parameter.name] = Parameter(spec, parameter.default is parameter.empty)
    return parameters


@dataclass(frozen=True)
class Checked:
    """What ``base`` accepts and then ``function`` accepts: a library's own argument check (``check_steps``),
    whose one-line refusal (an :class:`~nrp.errors.NRPError`) becomes the problem's message."""

    base: Spec
    function: Callable[[Any], Any]
    what: str = ""  # the description, when narrower than the base's

    def check(self, value: Any, path: str) -> Any:
        value = self.base.check(value, path)
        try:
            self.function(value)
        except NRPError as error:
            raise Problem(path, str(error).splitlines()[0]) from None
        return value

    def describe(self) -> str:
        return self.what or self.base.describe()
