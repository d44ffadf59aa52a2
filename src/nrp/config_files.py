"""Reading YAML/JSON configuration files into plain dictionaries, with one-line errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from nrp.errors import UsageError


def read_config_mapping(path: str | os.PathLike, known_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding a mapping; dashes in keys become underscores.

    Raises:
        UsageError: (exit code 2) the file is missing, unreadable, not a mapping, or has keys outside
            ``known_keys`` (``None``: the caller checks the keys).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"config file {path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                         f"{error.start})") from None
    try:
        values = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise UsageError(f"cannot read config file {path}: {reason}") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    odd = [key for key in values if not isinstance(key, str)]
    if odd:
        raise UsageError(f"config file {path}: key {odd[0]!r} is not a name")
    values = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = [] if known_keys is None else sorted(set(values) - set(known_keys))
    if unknown:
        raise UsageError(f"config file {path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known_keys))}")
    return values
