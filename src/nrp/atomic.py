"""Atomic file replacement: a reader never sees a half-written output or checkpoint."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any threads write files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; the finished file gets the permissions open() would have given it.
FILE_MODE = 0o666 & ~_read_umask()
# Room the temporary name needs besides the target's name: ".", ".", mkstemp's 8 random characters, ".tmp".
_TEMP_EXTRA = 14
NAME_MAX = 255  # longest file name most file systems accept, in bytes (ext4, XFS, APFS, NTFS)


def _temp_prefix(name: str) -> str:
    """``.<name>.``, with ``name`` cut (at a character boundary) so the temporary name fits in ``NAME_MAX`` bytes."""
    room = NAME_MAX - _TEMP_EXTRA
    while len(name.encode()) > room:
        name = name[:-1]
    return f".{name}."


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    The temporary file lives in the target's folder (created if needed) so the final ``os.replace`` is a
    rename within one file system, which is atomic; its name is the target's (cut to fit the 255-byte limit of
    file names), hidden, with a random part. If the body raises, the temporary file is removed and
    an existing ``target`` is left untouched.

    Example:
        >>> with atomic_path("out/model.safetensors") as tmp:  # doctest: +SKIP
        ...     save_file(tensors, tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target.name), suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # A replaced file keeps its permissions; a new one gets those open() would have given it.
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else FILE_MODE)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
