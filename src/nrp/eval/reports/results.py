"""Machine-readable results: ``results.json`` (everything, with versions) and CSV (one line per record)."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
import platform
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy
import torch
import torchvision

import nrp
from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.eval.reports.rows import CrossTaskRow, Row, as_cross_task_rows, as_rows

RESULTS_FORMAT = "nrp-results"
RESULTS_FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    """Versions of Python, torch, torchvision, nrp, numpy, Pillow, and timm when installed."""
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "nrp": nrp.__version__,
        "numpy": numpy.__version__,
    }
    for package, key in (("pillow", "pillow"), ("timm", "timm")):
        try:  # from the metadata: importing timm only to read its version costs seconds
            versions[key] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InputError(f"cannot write a {type(value).__name__} ({value!r}) to results.json; use str, number, list or dict")


def write_results_json(
    path: str | os.PathLike,
    rows: Iterable[Row | Mapping[str, Any]],
    cross_task_rows: Iterable[CrossTaskRow | Mapping[str, Any]],
    config: Mapping[str, Any],
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write every result, the configuration, the seed, library versions, the CPU thread count and a UTC timestamp,
    atomically.

    Args:
        path: output file (``results.json``); parent folders are created.
        rows: classification records (:class:`Row` or dicts).
        cross_task_rows: cross-task records (:class:`CrossTaskRow` or dicts).
        config: the run's configuration; paths are written as strings.
        seed: the run's random seed.
        extra: anything else to keep (timings, file lists), JSON-serialisable.

    Returns:
        ``path``.

    Raises:
        InputError: a record fails validation, or config/extra hold a value JSON cannot represent.
    """
    document = {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "versions": library_versions(),
        "threads": torch.get_num_threads(),
        "config": dict(config),
        "rows": [r.to_dict() for r in as_rows(rows)],
        "cross_task_rows": [r.to_dict() for r in as_cross_task_rows(cross_task_rows)],
        "extra": dict(extra or {}),
    }
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable)
    except ValueError as error:  # NaN or infinity in config/extra
        raise InputError(f"cannot write results.json: {error}") from error
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def read_results_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by :func:`write_results_json`; ``rows``/``cross_task_rows`` come back as dataclasses.

    Raises:
        InputError: the file is missing, not JSON, or not an nrp results file.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"results file not found: {path}") from error
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != RESULTS_FORMAT:
        raise InputError(f"{path} is not an nrp results file (no \"format\": \"{RESULTS_FORMAT}\")")
    document["rows"] = as_rows(document.get("rows", []))
    document["cross_task_rows"] = as_cross_task_rows(document.get("cross_task_rows", []))
    return document


def write_csv(path: str | os.PathLike, rows: Iterable[Row | CrossTaskRow | Mapping[str, Any]]) -> Path:
    """Write records as CSV, one line each, columns in the dataclass's field order; atomically.

    Classification records give the columns of :class:`Row`; :class:`CrossTaskRow` objects (or dicts with a
    ``"task"`` key) give its columns. One file holds one kind. None is written as an empty cell.

    Returns:
        ``path``.
    """
    rows = list(rows)
    records: list[Row] | list[CrossTaskRow]
    if rows and all(isinstance(r, CrossTaskRow) or (isinstance(r, Mapping) and "task" in r) for r in rows):
        records, kind = as_cross_task_rows(rows), CrossTaskRow
    else:
        records, kind = as_rows(rows), Row
    columns = [f.name for f in dataclasses.fields(kind)]
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if v is None else v) for k, v in record.to_dict().items()})
    return path


_PARSERS = {"int": int, "float": float, "float | None": float}


def read_csv(path: str | os.PathLike) -> list[Row] | list[CrossTaskRow]:
    """Read a file written by :func:`write_csv` back into :class:`Row` or :class:`CrossTaskRow` objects."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        kind = CrossTaskRow if "task" in (reader.fieldnames or []) else Row
        types = {f.name: str(f.type) for f in dataclasses.fields(kind)}
        records = []
        for line in reader:
            parsed: dict[str, Any] = {}
            for key, text in line.items():
                parse = _PARSERS.get(types.get(key, "str"))
                parsed[key] = text if parse is None else (None if text == "" else parse(text))
            records.append(parsed)
    return as_cross_task_rows(records) if kind is CrossTaskRow else as_rows(records)

