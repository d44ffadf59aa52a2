"""Finding input images and planning where their outputs go, without ever overwriting an input."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nrp.errors import InputError
from nrp.io.write import WRITE_SUFFIXES

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageSource:
    """One input image.

    Attributes:
        path: the file on disk.
        relative: where it sits relative to the input it was found under: for a folder input the path
            relative to that folder, for a file input just its name. Outputs mirror this path.
    """

    path: Path
    relative: Path


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or its absolute form when it cannot be resolved (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python < 3.13 reports symlink loops so
        return path.absolute()


def _search_folder(folder: Path, excluded: set[Path]) -> list[ImageSource]:
    found = []
    for root, dirs, files in os.walk(folder):
        # Pruning in place stops os.walk from descending into hidden folders (.git, .cache, ...) and into
        # the output folder of the run, when it lies inside the input.
        dirs[:] = [d for d in dirs if not d.startswith(".") and _resolved(Path(root) / d) not in excluded]
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(ImageSource(path=path, relative=path.relative_to(folder)))
    # Sort on the relative path's parts so the order does not depend on the file system's listing order.
    return sorted(found, key=lambda source: source.relative.parts)


def find_images(inputs: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike] = ()) -> list[ImageSource]:
    """List the images named by ``inputs``, in a deterministic order.

    Each input is a file or a folder. Folders are searched recursively for files whose suffix is in
    ``IMAGE_SUFFIXES`` (case-insensitive), sorted by relative path, skipping files and folders whose name
    starts with ".". A file named explicitly is kept whatever its suffix; decoding decides later. Inputs
    keep the order given; a file reached twice (same resolved path) is listed once, at its first place.
    Folders in ``exclude`` are not searched: a run's output folder inside its input folder is skipped, so
    the run's own outputs never become inputs and a second run resumes like any other. Files that are
    not regular (FIFOs, symlink loops) are listed as found; reading them fails and the run skips them.

    Args:
        inputs: paths of files and folders.
        exclude: folders left out of the search (typically the run's ``--out``).

    Returns:
        One ``ImageSource`` per distinct file.

    Raises:
        InputError: an input does not exist or is neither a file nor a folder, or nothing was found.

    Example:
        >>> find_images(["photos/", "extra.jpg"])  # doctest: +SKIP
        [ImageSource(path=PosixPath('photos/a.png'), relative=PosixPath('a.png')), ...]
    """
    sources: list[ImageSource] = []
    seen: set[Path] = set()
    excluded = {_resolved(Path(folder)) for folder in exclude}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            candidates = _search_folder(path, excluded)
        elif path.is_file():
            candidates = [ImageSource(path=path, relative=Path(path.name))]
        elif path.exists():
            raise InputError(f"input is neither a file nor a folder: {path}")
        else:
            raise InputError(f"input not found: {path}")
        for source in candidates:
            key = _resolved(source.path)
            if key not in seen:
                seen.add(key)
                sources.append(source)
    if not sources:
        searched = ", ".join(str(item) for item in inputs) or "(no inputs given)"
        raise InputError(f"no images found in {searched}; accepted suffixes: {', '.join(IMAGE_SUFFIXES)}")
    logger.debug("found %d images in %d inputs", len(sources), len(inputs))
    return sources


def _clash_key(path: Path) -> str:
    # Case-folded so that outputs which differ only in case cannot overwrite each other on
    # case-insensitive file systems (macOS, Windows).
    return str(path).casefold()


def plan_outputs(sources: Sequence[ImageSource], out_dir: str | os.PathLike, suffix: str = ".png") -> list[Path]:
    """Plan one output path per source, mirroring the input folder structure under ``out_dir``.

    Output ``i`` is ``out_dir / sources[i].relative`` with its suffix replaced by ``suffix``.
    Collision rule: when several sources would map to the same output (``a.jpg`` and ``a.png`` in one
    folder), every one of them keeps its full name and gets ``suffix`` appended instead (``a.jpg.png``,
    ``a.png.png``); sources that do not collide keep the plain rule. Outputs are compared case-insensitively.
    If a clash remains after that, an ``InputError`` names the sources involved.

    Nothing is written. The plan is refused if any output is the same file as any source.

    Args:
        sources: images from ``find_images``.
        out_dir: folder the outputs go under.
        suffix: output suffix, one of ``WRITE_SUFFIXES`` (case-insensitive), e.g. ".png".

    Returns:
        Paths aligned with ``sources``.

    Raises:
        InputError: unknown ``suffix``, an unresolvable clash, or an output that would overwrite an input.
    """
    if suffix.lower() not in WRITE_SUFFIXES:
        raise InputError(f"unknown output suffix {suffix!r}; accepted: {', '.join(WRITE_SUFFIXES)}")
    out_dir = Path(out_dir)
    outputs = [out_dir / source.relative.with_suffix(suffix) for source in sources]

    groups: dict[str, list[int]] = defaultdict(list)
    for i, output in enumerate(outputs):
        groups[_clash_key(output)].append(i)
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                outputs[i] = out_dir / sources[i].relative.with_name(sources[i].relative.name + suffix)

    _check_unique(sources, outputs)
    _check_not_inputs(sources, outputs)
    return outputs


def _check_unique(sources: Sequence[ImageSource], outputs: list[Path]) -> None:
    first: dict[str, int] = {}
    for i, output in enumerate(outputs):
        j = first.setdefault(_clash_key(output), i)
        if j != i:
            raise InputError(
                f"{sources[j].path} and {sources[i].path} would both be written to {output}; "
                "rename one of them or process them separately"
            )


def _check_not_inputs(sources: Sequence[ImageSource], outputs: list[Path]) -> None:
    # Compare (device, inode) rather than path strings so symlinks, hard links, ".." and
    # case-insensitive file systems cannot sneak an input past the check. Only existing outputs can be inputs.
    inputs: dict[tuple[int, int], Path] = {}
    for source in sources:
        try:
            stat = source.path.stat()
        except OSError:  # missing, or a symlink loop: not a file an output could overwrite
            continue
        inputs[(stat.st_dev, stat.st_ino)] = source.path
    for output in outputs:
        try:
            stat = output.stat()
        except OSError:
            continue
        victim = inputs.get((stat.st_dev, stat.st_ino))
        if victim is not None:
            raise InputError(f"output {output} would overwrite input {victim}; choose another --out")
