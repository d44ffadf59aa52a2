"""Purifier throughput (images/second) and peak resident memory on the CPU, for NRP and NRP_resG.

Each (network, size) runs in a fresh Python process, so its peak resident set size (``ru_maxrss``) is its
own; one more process per network only builds the network, so the memory a purification adds is visible.
Networks have their default size (NRP 16.5M parameters, NRP_resG 1.7M), random weights, eval mode, and
run under ``torch.inference_mode()`` through :class:`nrp.purifiers.Purifier` with ``tile_size=512`` and
``tile_overlap=64``: 224 and 512 images go through whole, the 3000x2000 photo window by window.

A full NRP pass over a 3000x2000 photo takes tens of minutes on a small CPU, so ``--max-tiles NAME=N``
runs only N windows of the real tiling and extrapolates the time. The windows run are the first N of the
largest size (interior windows, ``tile_size + 2 * overlap`` square): smaller border windows before them
are skipped (the wrapper returns zeros for them without running the network), so the peak memory is that
of the largest window, the one a full run peaks at. The full time is extrapolated by window pixels:
measured seconds per window pixel times the pixels of all windows of the tiling.

Usage::

    PYTHONPATH=src python benchmarks/bench_purifier.py                    # all, 7-10 minutes on 2 cores
    PYTHONPATH=src python benchmarks/bench_purifier.py --networks nrp_resg --sizes 224 512
    PYTHONPATH=src python benchmarks/bench_purifier.py --max-tiles nrp=4 nrp_resg=0   # 0: all windows
    PYTHONPATH=src python benchmarks/bench_purifier.py --one nrp 224      # one configuration, JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from machine import load_average, machine_info, write_json
from nrp.purifiers import NRP, NRPResG, Purifier

NETWORKS = {"nrp": NRP, "nrp_resg": NRPResG}
DEFAULT_SIZES = ("224", "512", "3000x2000")
DEFAULT_MAX_TILES = {"nrp": 1, "nrp_resg": 0}  # 0: every window
TILE_SIZE = 512
TILE_OVERLAP = 64
BASELINE = "none"  # the size argument of the process that only builds the network
DEFAULT_OUT = Path(__file__).parent / "results" / "purifier.json"


class _WindowBudgetSpent(Exception):
    """Raised by :class:`WindowBudget` once it has run its windows, to stop the tiling early."""


class WindowBudget(nn.Module):
    """Run ``network`` on at most ``max_windows`` windows of one size, then stop the tiling.

    Windows of another size are answered with zeros without running the network; each window run is
    timed. This exists only to bound benchmark time: the library's tiling is used unchanged.
    """

    def __init__(self, network: nn.Module, max_windows: int, window_shape: tuple[int, int]) -> None:
        super().__init__()
        self.network = network
        self.max_windows = max_windows
        self.window_shape = window_shape
        self.seconds: list[float] = []
        self.pixels: list[int] = []

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        if tuple(window.shape[-2:]) != self.window_shape:
            return torch.zeros_like(window)
        if len(self.seconds) == self.max_windows:
            raise _WindowBudgetSpent
        start = time.perf_counter()
        output = self.network(window)
        self.seconds.append(time.perf_counter() - start)
        self.pixels.append(window.shape[-2] * window.shape[-1])
        return output


class WindowRecorder(nn.Module):
    """A stand-in network that runs nothing and records the shape of every window it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(window.shape[-2:]))
        return window


def parse_size(size: str) -> tuple[int, int]:
    """``"224"`` -> (224, 224); ``"3000x2000"`` (width x height, as photos are named) -> (2000, 3000)."""
    if "x" in size:
        width, height = (int(side) for side in size.split("x"))
        return height, width
    return int(size), int(size)


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def window_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Shapes of all windows :class:`Purifier` cuts an image into (none when it purifies the image whole)."""
    if max(height, width) <= TILE_SIZE:
        return []
    recorder = WindowRecorder()
    with torch.inference_mode():
        Purifier(recorder, tile_size=TILE_SIZE, tile_overlap=TILE_OVERLAP)(torch.zeros(1, 3, height, width))
    return recorder.shapes


def run_one(name: str, size: str, max_tiles: int, min_seconds: float, max_repeats: int) -> dict[str, Any]:
    """Measure one configuration in this process; return its numbers (the parent prints them as JSON)."""
    torch.manual_seed(0)
    network = NETWORKS[name]().eval()
    result: dict[str, Any] = {
        "network": name,
        "parameters": sum(p.numel() for p in network.parameters()),
        "size": size,
        "torch_threads": torch.get_num_threads(),
    }
    if size == BASELINE:
        result["peak_rss_mib"] = peak_rss_mib()
        return result

    height, width = parse_size(size)
    shapes = window_shapes(height, width)
    purifier = Purifier(network, tile_size=TILE_SIZE, tile_overlap=TILE_OVERLAP).eval()
    x = torch.rand(1, 3, height, width)
    with torch.inference_mode():
        purifier(torch.rand(1, 3, 32, 32))  # warm-up: thread pool and kernel selection
        if shapes and 0 < max_tiles < len(shapes):
            result.update(run_some_windows(network, x, shapes, max_tiles))
        else:
            times = []
            while not times or (sum(times) < min_seconds and len(times) < max_repeats):
                start = time.perf_counter()
                purifier(x)
                times.append(time.perf_counter() - start)
            result.update({"seconds_per_image": statistics.median(times), "runs": times, "extrapolated": False})
    result["images_per_second"] = 1 / result["seconds_per_image"]
    result["windows"] = len(shapes)
    result["window_pixels"] = sum(h * w for h, w in shapes)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def run_some_windows(network: nn.Module, x: torch.Tensor, shapes: list[tuple[int, int]], max_tiles: int) -> dict[str, Any]:
    """Run ``max_tiles`` of the largest windows through the real tiling; extrapolate the full image's time."""
    largest = max(shapes, key=lambda shape: shape[0] * shape[1])
    budget = WindowBudget(network, max_tiles, largest)
    start = time.perf_counter()
    try:
        Purifier(budget, tile_size=TILE_SIZE, tile_overlap=TILE_OVERLAP)(x)
    except _WindowBudgetSpent:
        pass
    elapsed = time.perf_counter() - start
    seconds_per_pixel = sum(budget.seconds) / sum(budget.pixels)
    return {
        "seconds_per_image": seconds_per_pixel * sum(h * w for h, w in shapes),
        "extrapolated": True,
        "windows_run": len(budget.seconds),
        "window_run_shape": list(largest),
        "window_seconds": budget.seconds,
        "seconds_run": elapsed,
        # by window count instead of pixels: an upper bound, as border windows are smaller
        "seconds_per_image_by_window_count": statistics.mean(budget.seconds) * len(shapes),
    }


def run_in_subprocess(name: str, size: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", name, size, "--min-seconds", str(args.min_seconds),
               "--max-repeats", str(args.max_repeats), "--max-tiles", *(f"{k}={v}" for k, v in args.max_tiles.items())]
    completed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def parse_max_tiles(values: list[str]) -> dict[str, int]:
    limits = dict(DEFAULT_MAX_TILES)
    for value in values:
        name, _, count = value.partition("=")
        if name not in NETWORKS or not count.isdigit():
            raise SystemExit(f"--max-tiles takes NAME=N with NAME in {', '.join(NETWORKS)} and N >= 0, got '{value}'")
        limits[name] = int(count)
    return limits


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'network':10}{'size':>11}{'windows':>9}{'s / image':>11}{'images/s':>10}{'peak RSS MiB':>14}{'+ over built':>14}  note")
    built = {row["network"]: row["peak_rss_mib"] for row in rows if row["size"] == BASELINE}
    for row in rows:
        if row["size"] == BASELINE:
            print(f"{row['network']:10}{'(built only)':>11}{'':>9}{'':>11}{'':>10}{row['peak_rss_mib']:14.0f}")
            continue
        note = ""
        if row.get("extrapolated"):
            shape = "x".join(str(side) for side in row["window_run_shape"])
            note = (f"extrapolated from {row['windows_run']} of {row['windows']} windows ({shape}) by pixels; "
                    f"by window count {row['seconds_per_image_by_window_count']:.0f} s")
        print(f"{row['network']:10}{row['size']:>11}{row['windows'] or '-':>9}{row['seconds_per_image']:11.2f}"
              f"{row['images_per_second']:10.4f}{row['peak_rss_mib']:14.0f}{row['peak_rss_mib'] - built.get(row['network'], 0):14.0f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="N (square) or WIDTHxHEIGHT")
    parser.add_argument("--max-tiles", nargs="*", default=[], metavar="NAME=N",
                        help=f"windows to run per tiled image, 0 for all (default: {DEFAULT_MAX_TILES})")
    parser.add_argument("--min-seconds", type=float, default=10.0, help="repeat untiled runs until this much time")
    parser.add_argument("--max-repeats", type=int, default=5)
    parser.add_argument("--one", nargs=2, metavar=("NETWORK", "SIZE"), help=f"one configuration in this process; SIZE '{BASELINE}' only builds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.max_tiles = parse_max_tiles(args.max_tiles)

    if args.one is not None:
        name, size = args.one
        print(json.dumps(run_one(name, size, args.max_tiles[name], args.min_seconds, args.max_repeats)))
        return

    info = machine_info()
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, "
          f"{info['torch_threads']} threads, load {info['load_average_at_start']}; max tiles {args.max_tiles}")
    rows = []
    for name in args.networks:
        for size in [BASELINE, *args.sizes]:
            start = time.perf_counter()
            row = run_in_subprocess(name, size, args)
            rows.append(row)
            print(f"{name} {size}: {row.get('seconds_per_image', 0):.2f} s / image, peak {row['peak_rss_mib']:.0f} MiB "
                  f"({time.perf_counter() - start:.0f} s with start-up)", flush=True)
    print_table(rows)
    results = {
        "settings": {"tile_size": TILE_SIZE, "tile_overlap": TILE_OVERLAP, "batch_size": 1, "max_tiles": args.max_tiles,
                     "weights": "random", "mode": "eval, torch.inference_mode()"},
        "results": rows,
        "machine": {**info, "load_average_at_end": load_average()},
    }
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
