"""Class labels for images: from a CSV file, from a folder-per-class layout, or none at all."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from nrp.errors import InputError
from nrp.io.discover import ImageSource

# Accepted column names, compared case-insensitively (the NeurIPS-2017 dev set uses the second ones).
IMAGE_COLUMNS = ("image", "imageid", "filename", "file", "path")
LABEL_COLUMNS = ("label", "truelabel", "class")
TARGET_COLUMNS = ("target", "targetclass")


def read_labels_csv(path: str | os.PathLike, offset: int = 0) -> tuple[dict[str, int], dict[str, int]]:
    """Read ``(labels, targets)`` keyed by image stem from a CSV with a header row.

    Columns (case-insensitive): the image (``image``, ``ImageId``, ``filename``, ``file`` or ``path``; only the
    stem counts, so ``cat.png`` and ``cat`` match), its label (``label``, ``TrueLabel`` or ``class``) and,
    optionally, a target class for targeted attacks (``target`` or ``TargetClass``). ``offset`` is subtracted
    from every class (1 for the NeurIPS-2017 set's 1-based, 1001-class labels).

    Raises:
        InputError: missing file or columns, or a class that is not an integer (naming the row).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file not found: {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or []}
        image_column = _pick(columns, IMAGE_COLUMNS, path, "image")
        label_column = _pick(columns, LABEL_COLUMNS, path, "label")
        target_column = next((columns[c] for c in TARGET_COLUMNS if c in columns), None)
        labels: dict[str, int] = {}
        targets: dict[str, int] = {}
        for row_number, row in enumerate(reader, start=2):
            stem = Path(row[image_column].strip()).stem
            labels[stem] = _integer(row[label_column], path, row_number) - offset
            if target_column is not None and row[target_column].strip():
                targets[stem] = _integer(row[target_column], path, row_number) - offset
    return labels, targets


def folder_labels(sources: Sequence[ImageSource]) -> list[int]:
    """Labels from an ImageNet-style layout: each image's first folder is its class, classes in sorted order.

    Raises:
        InputError: an image that is not inside a class folder.
    """
    loose = [source.path for source in sources if len(source.relative.parts) < 2]
    if loose:
        raise InputError(f"{loose[0]} is not inside a class folder; a folder-per-class layout puts every image in one")
    classes = sorted({source.relative.parts[0] for source in sources})
    index = {name: position for position, name in enumerate(classes)}
    return [index[source.relative.parts[0]] for source in sources]


def labels_for(sources: Sequence[ImageSource], labels: dict[str, int], what: str = "label") -> list[int]:
    """Look up each source's class by its file stem; a missing one raises naming the image."""
    missing = [source.path for source in sources if source.path.stem not in labels]
    if missing:
        raise InputError(f"no {what} for {missing[0]} in the labels file ({len(missing)} image(s) missing)")
    return [labels[source.path.stem] for source in sources]


def _pick(columns: dict[str, str], accepted: tuple[str, ...], path: Path, what: str) -> str:
    for name in accepted:
        if name in columns:
            return columns[name]
    raise InputError(f"{path} has no {what} column; expected one of: {', '.join(accepted)}")


def _integer(text: str, path: Path, row: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(f"{path}, row {row}: class '{text}' is not an integer") from None
