"""Progress of ``nrp eval`` and ``nrp demo``: numbered stages, a bar on a terminal, one line per stage in a log.

The protocol reports each stage it has work for (``clean images``, ``craft SET``, ``evaluate SET``); the
stages are numbered against the experiment's plan, so a resumed run says ``[12/20]`` for the stage it
resumes at. On a terminal each stage has a tqdm bar; elsewhere (a log file, CI) the stage's start and end
are printed as lines, without the carriage returns a bar would fill the log with.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from nrp.eval.config import EvalConfig
from nrp.eval.run import ADAPTIVE_STAGE, CURVES_STAGE
from nrp.eval.sets import clean_set, plan_sets


def stage_plan(config: EvalConfig) -> list[str]:
    """The descriptions of the stages of ``config`` (classification, the curves, the adaptive attacks), in the
    order they run."""
    sets = plan_sets(Path(config.out), config.transfer_components(), config.eps, config.sources)
    stages = ["clean images", *(f"craft {s.key}" for s in sets), *(f"evaluate {s.key}" for s in [clean_set(Path(config.out)), *sets])]
    return stages + ([CURVES_STAGE] if config.curves else []) + ([ADAPTIVE_STAGE] if config.adaptive_components() else [])


class _Counter:
    """The bar's interface where there is no bar: counts what was done."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass


class StageProgress:
    """A progress factory (``with progress(description, total) as bar``) that numbers stages against a plan.

    Args:
        plan: the stages' descriptions in order (:func:`stage_plan`); a stage outside it is numbered after them.
        stream: where progress goes (stderr); a bar only when it is a terminal.
    """

    def __init__(self, plan: list[str], stream: IO[str] | None = None) -> None:
        self.plan = list(plan)
        self.stream = stream if stream is not None else sys.stderr
        self.extra = 0

    def label(self, description: str) -> str:
        """``"[k/N] description"``: the stage's place in the plan."""
        if description in self.plan:
            return f"[{self.plan.index(description) + 1}/{len(self.plan)}] {description}"
        self.extra += 1
        return f"[{len(self.plan)}+{self.extra}] {description}"

    @contextlib.contextmanager
    def __call__(self, description: str, total: int) -> Iterator[Any]:
        label = self.label(description)
        if self.stream.isatty():
            with tqdm(total=total, desc=label, unit="img", leave=False, dynamic_ncols=True, file=self.stream) as bar:
                yield bar
            return
        start = time.perf_counter()
        print(f"nrp: {label}: {total} images ...", file=self.stream, flush=True)
        counter = _Counter()
        yield counter
        print(f"nrp: {label}: done ({time.perf_counter() - start:.0f} s)", file=self.stream, flush=True)
