"""Reading an experiment file into an :class:`~nrp.eval.config.EvalConfig`, checked against its schema."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from nrp.config_files import read_config_mapping
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_schema import Options, check_experiment


def check_config(config: EvalConfig) -> None:
    """Check every key of ``config`` against the experiment file's schema (:mod:`nrp.eval.experiment_schema`):
    types, ranges, attack, defense, metric and curve names and parameters, and the checks across keys.

    Raises:
        SchemaError: (a :class:`~nrp.errors.UsageError`) every problem, in one line naming each key.
    """
    check_experiment(dataclasses.asdict(config))


def load_eval_config(path: str | os.PathLike | None, overrides: dict[str, Any], strict: bool = False) -> EvalConfig:
    """Defaults, then the experiment file (if any), then every override that is not ``None``; checked as a whole.

    Args:
        path: the experiment file (YAML or JSON), or ``None``.
        overrides: values by key (the command line's flags; a key's flag is ``--key-name``).
        strict: also require known model names and existing input paths (the command line: a file cannot
            provide its own models, and every input must be there before the first image is read).

    Raises:
        UsageError: an unreadable file, or a bad value (:class:`~nrp.schema.SchemaError`, one line naming the
            file or the flag and the key).
    """
    values = read_config_mapping(path) if path is not None else {}
    where = {key: str(path) for key in ["", *values]} if path is not None else {}
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
            where[key] = f"--{key.replace('_', '-')}"
    checked = check_experiment(values, where, Options(models=strict, paths=strict))
    return EvalConfig(**checked)
