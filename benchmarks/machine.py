"""What the benchmarks record about the machine they ran on, so numbers can be compared honestly."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: a load above the core count means the numbers are noisy."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch version and thread count, date (UTC), and the current load."""
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": load_average(),
    }


def write_json(path: str | os.PathLike, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def add_run_arguments(parser: argparse.ArgumentParser, default_out: Path) -> None:
    """``--threads``, ``--seed`` and ``--out``, which every benchmark takes."""
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads; default: leave torch's default (one per core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=default_out)


def start_run(args: argparse.Namespace) -> dict[str, Any]:
    """Apply ``--threads`` and ``--seed``, then describe the machine (so the thread count is the one used)."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return machine_info()
