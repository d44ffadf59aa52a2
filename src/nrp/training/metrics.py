"""Training logs: one JSON line per record in ``metrics.jsonl``, mirrored to TensorBoard when installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from nrp.atomic import atomic_path

logger = logging.getLogger(__name__)


class MetricsLog:
    """Append-only scalar log of a run; on resume, records past the resumed iteration are dropped.

    Args:
        folder: the run folder; the log is ``folder/metrics.jsonl`` and TensorBoard events go to
            ``folder/tensorboard`` when the ``tensorboard`` package is importable.
        resume_from: the iteration a resumed run restarts at; lines of a killed run beyond it are removed
            so the log reads as if the run had never stopped.
    """

    def __init__(self, folder: Path, resume_from: int = 0) -> None:
        self.path = folder / "metrics.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        self._truncate(resume_from)
        self.tensorboard = _tensorboard_writer(folder / "tensorboard")

    def write(self, iteration: int, split: str, scalars: dict[str, float]) -> None:
        """Record ``scalars`` of ``split`` (``train`` or ``val``) at ``iteration``."""
        record = {"iteration": iteration, "split": split, **{k: float(v) for k, v in scalars.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, value in scalars.items():
                self.tensorboard.add_scalar(f"{split}/{name}", float(value), iteration)

    def close(self) -> None:
        """Flush TensorBoard's writer."""
        if self.tensorboard is not None:
            self.tensorboard.close()

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def _truncate(self, resume_from: int) -> None:
        kept = [record for record in self.records() if record["iteration"] <= resume_from]
        if resume_from == 0 or len(kept) == len(self.records()):
            return
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(record) + "\n" for record in kept))


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
