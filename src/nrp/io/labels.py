"""Class labels for images: from a CSV file, from a folder-per-class layout, or none at all."""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from nrp.errors import InputError
from nrp.io.discover import IMAGE_SUFFIXES, ImageSource

# Accepted column names, compared case-insensitively (the NeurIPS-2017 dev set uses the second ones).
IMAGE_COLUMNS = ("image", "imageid", "filename", "file", "path")
LABEL_COLUMNS = ("label", "truelabel", "class")
TARGET_COLUMNS = ("target", "targetclass")


def image_key(relative: str | os.PathLike) -> str:
    """The key an image is labelled under: its path relative to the image folder, '/'-separated, image suffix dropped.

    ``cat/00.png``, ``./cat/00.PNG`` and ``cat\\00`` all give ``cat/00``; only suffixes in ``IMAGE_SUFFIXES`` are
    dropped, so ``v1.2`` keeps its ``.2``. The NeurIPS-2017 ``ImageId`` column (names without suffix) fits as it is.
    """
    parts = [part for part in PureWindowsPath(str(relative)).as_posix().split("/") if part not in ("", ".")]
    key = PurePosixPath(*parts) if parts else PurePosixPath()
    if key.suffix.lower() in IMAGE_SUFFIXES:
        key = key.with_suffix("")
    return str(key)


def read_labels_csv(path: str | os.PathLike, offset: int = 0) -> tuple[dict[str, int], dict[str, int]]:
    """Read ``(labels, targets)`` keyed by :func:`image_key` from a UTF-8 CSV with a header row.

    Columns (case-insensitive): the image (``image``, ``ImageId``, ``filename``, ``file`` or ``path``: its path
    relative to the image folder, so ``cat/00.png`` and ``dog/00.png`` are two images; the suffix may be left
    out), its label (``label``, ``TrueLabel`` or ``class``) and, optionally, a target class for targeted attacks
    (``target`` or ``TargetClass``). ``offset`` is subtracted from every class (1 for the NeurIPS-2017 set's
    1-based, 1001-class labels). A UTF-8 byte-order mark is accepted.

    Raises:
        InputError: missing file or columns, a file that is not UTF-8 text, a row with too few fields or a
            class that is not an integer (naming the line), or two rows for one image (naming both).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _read_rows(csv.DictReader(handle), path, offset)
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
            "save it as UTF-8"
        ) from None
    except csv.Error as error:
        raise InputError(f"{path} is not a readable CSV file ({error})") from None


def _read_rows(reader: csv.DictReader, path: Path, offset: int) -> tuple[dict[str, int], dict[str, int]]:
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    image_column = _pick(columns, IMAGE_COLUMNS, path, "image")
    label_column = _pick(columns, LABEL_COLUMNS, path, "label")
    target_column = next((columns[c] for c in TARGET_COLUMNS if c in columns), None)
    needed = (image_column, label_column)
    labels: dict[str, int] = {}
    targets: dict[str, int] = {}
    first_row: dict[str, tuple[int, str]] = {}
    for row in reader:
        line = reader.line_num
        if any(row.get(name) is None for name in needed):
            raise InputError(
                f"{path}, line {line}: {sum(v is not None for k, v in row.items() if k is not None)} field(s), "
                f"expected {len(reader.fieldnames)} "
                f"({', '.join(reader.fieldnames)})"
            )
        name = row[image_column].strip()
        key = image_key(name)
        if not key or key == ".":
            raise InputError(f"{path}, line {line}: empty image name")
        if key in first_row:
            earlier_line, earlier_name = first_row[key]
            raise InputError(
                f"{path}: lines {earlier_line} ({earlier_name}) and {line} ({name}) both label image '{key}'; keep one"
            )
        first_row[key] = (line, name)
        labels[key] = _integer(row[label_column], path, line) - offset
        target = row.get(target_column) if target_column is not None else None
        if target is not None and target.strip():
            targets[key] = _integer(target, path, line) - offset
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
    """Look up each source's class by its relative path (:func:`image_key`); a missing one raises naming the image.

    A labels file that names images without their folder (``00.png`` for ``cat/00.png``) still fits, as long
    as no two images share that name: an ambiguous bare name is refused rather than guessed.
    """
    keys = [image_key(source.relative) for source in sources]
    bare_counts = Counter(PurePosixPath(key).name for key in keys)
    found: list[int] = []
    missing: list[Path] = []
    for source, key in zip(sources, keys):
        if key in labels:
            found.append(labels[key])
            continue
        bare = PurePosixPath(key).name
        if bare in labels and bare_counts[bare] > 1:
            clashing = [str(s.relative) for s, k in zip(sources, keys) if PurePosixPath(k).name == bare]
            raise InputError(
                f"the labels file names '{bare}' without a folder, but {bare_counts[bare]} images have that name "
                f"({', '.join(clashing[:3])}); give their paths relative to the image folder"
            )
        if bare in labels:
            found.append(labels[bare])
        else:
            missing.append(source.path)
    if missing:
        raise InputError(f"no {what} for {missing[0]} in the labels file ({len(missing)} image(s) missing)")
    return found


def _pick(columns: dict[str, str], accepted: tuple[str, ...], path: Path, what: str) -> str:
    for name in accepted:
        if name in columns:
            return columns[name]
    raise InputError(f"{path} has no {what} column; expected one of: {', '.join(accepted)}")


def _integer(text: str, path: Path, line: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(f"{path}, line {line}: class '{text}' is not an integer") from None
