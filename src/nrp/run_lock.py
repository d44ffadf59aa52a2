"""One writer per run folder: an advisory ``fcntl.flock`` lock held for a whole ``nrp train`` or ``nrp eval`` run.

Two processes writing one run folder interleave their logs and overwrite each other's checkpoints, so the
second one is refused at once, naming the first one's PID. The lock is the kernel's (``flock`` on the hidden
file ``RUN/.nrp.lock``): it is released when the process ends, however it ends, so a killed run never leaves a
stale lock behind, and a rerun resumes as usual. It is advisory: only nrp processes honour it. POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from nrp.errors import InputError

LOCK_FILE = ".nrp.lock"


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Create ``folder`` if needed and hold its lock for the body; yields the lock file's path.

    Raises:
        InputError: another process holds the folder (its PID is named).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise InputError(
                f"{folder} is in use by another nrp process (PID {holder}); wait for it to end or choose another --out"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def is_rank_zero() -> bool:
    """Whether this process is rank 0 of a ``torchrun`` launch (or not launched by it): the one that locks."""
    return os.environ.get("RANK", "0") == "0"
