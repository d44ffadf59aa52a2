"""What the evaluation stages report progress to: a factory ``progress(description, total)`` of tqdm-like bars.

A leaf module, so the set store, the protocols and the command line (:mod:`nrp.cli.progress`) share one interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Progress(Protocol):
    """What a stage reports progress to: ``update(n)`` after each batch (tqdm's interface)."""

    def update(self, n: int = 1) -> Any: ...


ProgressFactory = Callable[[str, int], contextlib.AbstractContextManager[Progress]]


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def silent_progress(description: str, total: int) -> Iterator[Progress]:
    """A progress factory that reports nothing (library default; the command line passes tqdm bars)."""
    yield _Silent()
