"""Stored evaluation artefacts keyed by a fingerprint of everything that shaped them, in injectively named folders.

Every stored image set, prediction file and score file records the plain-value description (the *record*) of
how it was made and its :func:`~nrp.fingerprint.fingerprint`. A later run that would make it differently
(another attack parameter, defense parameter, image size, preprocessing, weights file, seed or package
version) computes another fingerprint: the stale artefact is recomputed, or with ``stale: refuse`` the run
stops, and the log names the artefact and the fields that changed. A set folder holds ``fingerprint.json``
(written before its first image, so an interrupted set resumes only under the same configuration) and
``manifest.json`` (written after its last image: the set is complete). Both also say at how many CPU threads
the set's images were made (``threads``, each count that crafted some of them, in order): the record leaves it
out, since a set is as valid at any count, but classifier gradients round differently at another one
(docs/evaluation.md).

Folder names are labels percent-encoded (:func:`folder_name`), an injective and path-safe mapping: ``"FGSM a"``
and ``"FGSM_a"`` get two folders, ``"a/b"`` stays one folder level.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path
from typing import Any

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.fingerprint import fingerprint

logger = logging.getLogger(__name__)

RECORD = "fingerprint.json"
MANIFEST = "manifest.json"
STALE_POLICIES = ("recompute", "refuse")
REFUSED_LABELS = ("", ".", "..")
FORBIDDEN_IN_LABELS = ("/", "\\", "\0")


class StaleArtefactError(InputError):
    """A stored artefact was made under another configuration and the run was told to refuse it."""


def check_label(label: str, what: str) -> None:
    """Refuse a label that cannot name a folder: empty, ``.``, ``..``, or holding ``/``, ``\\`` or NUL.

    Raises:
        InputError: naming ``what`` (``attack``, ``defense``) and the label.
    """
    if label.strip() in REFUSED_LABELS or any(character in label for character in FORBIDDEN_IN_LABELS):
        raise InputError(f"{what} label {label!r} cannot name a folder: labels must be non-empty, not '.' or '..', "
                         f"and hold no '/' or '\\'")


def folder_name(text: str) -> str:
    """An injective, path-safe folder name for ``text``: percent-encoding of everything but ``A-Za-z0-9_.-~``.

    Distinct texts give distinct names (the encoding is reversible with ``urllib.parse.unquote``), and no name
    holds a path separator.

    Example:
        >>> folder_name("FGSM a"), folder_name("FGSM_a"), folder_name("vgg16:conv3_3")
        ('FGSM%20a', 'FGSM_a', 'vgg16%3Aconv3_3')
    """
    if text in REFUSED_LABELS:
        raise InputError(f"{text!r} cannot name a folder")
    return urllib.parse.quote(text, safe="")


def changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The fields where two records differ, as ``path: old -> new`` lines (for the log)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += changes(old.get(key, "<unset>"), new.get(key, "<unset>"), f"{prefix}{key}.")
        return found
    if old != new:
        return [f"{prefix.rstrip('.')}: {_short(old)} -> {_short(new)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_policy(policy: str) -> None:
    """Refuse an unknown ``stale`` policy, listing the known ones."""
    if policy not in STALE_POLICIES:
        raise InputError(f"stale must be one of {', '.join(STALE_POLICIES)}, got {policy!r}")


def stale(what: str, old_record: Any, record: dict[str, Any], policy: str) -> None:
    """Log why ``what`` is recomputed, or raise :class:`StaleArtefactError` under the ``refuse`` policy."""
    plain = json.loads(json.dumps(record, default=str))  # tuples as lists, as the stored record has them
    found = changes(old_record, plain) if old_record is not None else ["made by an older nrp without a fingerprint"]
    reason = "; ".join(found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
    if policy == "refuse":
        raise StaleArtefactError(f"{what} was stored under another configuration ({reason}); rerun into a new "
                                 f"'out' folder, or set stale: recompute")
    logger.warning("recomputing %s: stored under another configuration (%s)", what, reason)


def open_set_folder(folder: Path, record: dict[str, Any], what: str, policy: str, threads: int | None = None) -> bool:
    """Get ``folder`` ready for the set described by ``record``; ``True`` when it is already complete.

    A complete set of this fingerprint is kept; an interrupted one of this fingerprint resumes; a set stored
    under another fingerprint (or without one) is stale: its images are removed (or, ``policy="refuse"``,
    :class:`StaleArtefactError` is raised) and ``fingerprint.json`` is written before any new image.
    ``threads``: the CPU threads that will make the missing images, noted in ``fingerprint.json``; resuming at a
    count that made none of the stored images is logged, since the set then mixes two roundings.
    """
    stamp = fingerprint(record)
    manifest = _read_json(folder / MANIFEST)
    if manifest is not None and manifest.get("fingerprint") == stamp:
        return True
    started = _read_json(folder / RECORD)
    if started is not None and started.get("fingerprint") == stamp:
        _note_threads(folder, started, threads, what)
        return False
    stored = [path for path in folder.glob("*.png")] if folder.is_dir() else []
    if stored or manifest is not None or started is not None:
        stale(what, (started or manifest or {}).get("record"), record, policy)
        for path in [*stored, folder / MANIFEST]:
            path.unlink(missing_ok=True)
    write_json(folder / RECORD, {"fingerprint": stamp, "record": record,
                                 **({} if threads is None else {"threads": [threads]})})
    return False


def _note_threads(folder: Path, started: dict[str, Any], threads: int | None, what: str) -> None:
    """Add ``threads`` to an interrupted set's counts, with a warning when no stored image was made at it."""
    made = started.get("threads")
    if threads is None or not isinstance(made, list) or threads in made:
        return
    logger.warning("resuming %s at %d CPU threads; its stored images were made at %s: classifier gradients round "
                   "differently at another count, so the set mixes both (docs/evaluation.md)", what, threads,
                   ", ".join(map(str, made)))
    write_json(folder / RECORD, {**started, "threads": [*made, threads]})


def close_set_folder(folder: Path, record: dict[str, Any], **details: Any) -> None:
    """Write the manifest that marks the set of ``record`` complete (``details``: counts, labels for readers), with
    the thread counts that made it, as ``fingerprint.json`` has them."""
    threads = (_read_json(folder / RECORD) or {}).get("threads")
    write_json(folder / MANIFEST, {**details, **({} if threads is None else {"threads": threads}),
                                   "fingerprint": fingerprint(record), "record": record})


def stamped(payload: dict[str, Any] | None, record: dict[str, Any], what: str, policy: str) -> bool:
    """Whether a stored ``payload`` (a dict with ``fingerprint`` and ``record``, or ``None`` when absent) was made
    under ``record``; a stale one is logged (or refused, see :func:`stale`)."""
    if payload is None:
        return False
    if isinstance(payload, dict) and payload.get("fingerprint") == fingerprint(record):
        return True
    stale(what, payload.get("record") if isinstance(payload, dict) else None, record, policy)
    return False


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1, default=str))


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
