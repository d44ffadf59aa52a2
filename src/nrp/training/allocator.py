"""Keeping freed memory inside the training process, so activations are not faulted in from the kernel again.

glibc's ``malloc`` serves every request above its mmap threshold (at most 32 MiB) with fresh pages from
``mmap`` and hands them back with ``munmap`` on ``free``; it also trims the top of its heap once more than a
threshold is free there. A training iteration allocates and frees activations of tens of megabytes hundreds
of times (NRP-Lite at batch 16 and 128x128: 64 MiB per feature map), so the kernel zero-fills and maps each
4 KiB page again and again: stage 0 of issue 13 took 13.4 million minor page faults in 240 CPU-seconds, 27% of
its CPU time in the kernel. :func:`retain_freed_memory` turns both off, so freed memory is reused from the
heap; the process then keeps its peak footprint instead of shrinking between iterations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# mallopt parameters (glibc's <malloc.h>).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int): more free heap top than any run here has


def retain_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse (no ``mmap`` per large block, no heap trimming).

    Process-wide and irreversible for the memory already held; results are unchanged (only where memory
    comes from changes). Returns ``False``, changing nothing, where the C library has no ``mallopt`` (not
    glibc: macOS, Windows, musl) or refuses a setting.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        logger.info("the C library has no mallopt: freed memory goes back to the system as usual")
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    kept = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
    logger.info("malloc keeps freed memory for reuse: %s", "on" if kept else "refused by the C library")
    return kept
