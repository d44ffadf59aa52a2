"""Time of one training iteration (Algorithm 2) on this machine, split into its three parts.

For each purifier (a tiny NRP and the authors' NRP_resG) at the paper's batch 16 and 128x128 crops, with
the paper's feature extractor (VGG16 up to conv3_3, random weights: only the cost matters here) and the
default critic, one iteration is timed as:

* ssp: crafting x' (``Trainer.perturb_batch``: the clean-feature forward plus ``ssp_steps`` steps);
* purifier: the purifier step on Eq. 8 (purifier forward, features of the purified batch, critic forward,
  backward, Adam);
* critic: the critic step (forward on real + purified, backward, Adam).

The SSP part is compared with its lower bound: ``ssp_steps`` x one forward + input-gradient backward of the
truncated extractor at the same batch, timed side by side in the same rounds (target: ratio <= 1.15).

The loader is measured on its own: generated 640x480 JPEGs (MS-COCO's size), resized to 480 and cropped to
128 as in the paper, with the default number of workers; images per second delivered, against the images
per second an iteration of each purifier consumes (target: >= 4x). Then a short ``Trainer.train`` run of the
tiny NRP on the same photos reports the share of each iteration spent waiting for the loader (the first
iteration, which starts the workers, left out).

Purifier updates per CPU-second (issue 13, item 2) are measured on the shipped purifier's training setup
(NRP-Lite 64 wide with 8 blocks, EfficientNet-Lite0 up to ``_blocks.4`` with random weights, critic 32, half
the images TI-smoothed SSP, a quarter clean), before and after: one update per crafted batch with the system
allocator in float32 (Algorithm 2 as it ran before), then with a retained heap, 1, 2 or 4 updates per crafted
batch, and bfloat16 autocast with channels-last networks (oneDNN's bfloat16 convolutions, on CPUs with AVX512-BF16
or AMX).
Each setting runs in a fresh process (the allocator setting is process-wide), the settings interleaved round
by round; each reports its CPU time (user + system, ``getrusage``) and minor page faults per update, so the
ratios hold on a machine other jobs share.

Usage::

    python benchmarks/bench_train.py                      # batch 16, crop 128, 10 SSP steps, 2 rounds
    python benchmarks/bench_train.py --rounds 3 --out benchmarks/results/train.json
    python benchmarks/bench_train.py --only updates       # just the updates per CPU-second
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image

from machine import load_average, machine_info, write_json
from nrp.features.backbones import build_backbone
from nrp.training import TrainConfig, Trainer
from nrp.training.data import CropSpec, TrainingImages, default_workers, training_loader

TARGET_RATIO = 1.15
TARGET_LOADER_MARGIN = 4.0
DEFAULT_OUT = Path(__file__).parent / "results" / "train.json"
UPDATES_OUT = Path(__file__).parent / "results" / "train_updates.json"
PURIFIERS = {
    "tiny NRP (width 16, 2 blocks, growth 8)": {"purifier": "nrp", "width": 16, "blocks": 2, "growth": 8},
    "NRP_resG (authors' size)": {"purifier": "nrp_resg"},
}


# The shipped purifier's training (configs/nrp_lite_offline.yaml plus stage 3's mix), at the bench's batch and crop.
SHIPPED_SETUP = {
    "purifier": "nrp_lite", "width": 64, "blocks": 8, "critic_width": 32, "backbone": "efficientnet-lite0",
    "layer": "_blocks.4", "ssp_ti_kernel": 15, "ssp_ti_fraction": 0.5, "clean_fraction": 0.25,
}
BEFORE = {"updates_per_batch": 1, "retain_heap": False, "precision": "fp32", "channels_last": False}
FAST = {"retain_heap": True, "precision": "bf16", "channels_last": True}
UPDATE_SETTINGS = {
    "1 update per batch, fp32, system allocator (before)": BEFORE,
    "1 update per batch, bf16, channels-last, retained heap": {**FAST, "updates_per_batch": 1},
    "4 updates per batch, fp32, retained heap": {**BEFORE, "updates_per_batch": 4, "retain_heap": True},
    "2 updates per batch, bf16, channels-last, retained heap": {**FAST, "updates_per_batch": 2},
    "4 updates per batch, bf16, channels-last, retained heap": {**FAST, "updates_per_batch": 4},
}


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def lower_bound(trainer: Trainer, clean: torch.Tensor, steps: int) -> float:
    """``steps`` bare forward + input-gradient backward passes of the truncated extractor."""
    extractor = trainer.feature_extractor

    def run() -> None:
        for _ in range(steps):
            x = clean.detach().requires_grad_(True)
            torch.autograd.grad(extractor(x).sum(), x)

    return seconds(run)


def measure(trainer: Trainer, clean: torch.Tensor, steps: int) -> dict[str, float]:
    """One iteration's parts, in seconds, plus the SSP lower bound measured right beside them."""
    times: dict[str, Any] = {}
    times["ssp_lower_bound"] = lower_bound(trainer, clean, steps)
    start = time.perf_counter()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    times["ssp"] = time.perf_counter() - start
    start = time.perf_counter()
    purified, _ = trainer.purifier_step(clean, perturbed)
    times["purifier"] = time.perf_counter() - start
    times["critic"] = seconds(lambda: trainer.critic_step(clean, purified))
    times["iteration"] = times["ssp"] + times["purifier"] + times["critic"]
    return times


def write_photos(folder: Path, count: int) -> None:
    """``count`` 640x480 JPEGs (quality 90) of smooth colour ramps plus noise, roughly a photo's entropy."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 640)[None, :, None] * np.linspace(0, 1, 480)[:, None, None]
    for index in range(count):
        colour = rng.uniform(0, 255, 3)
        pixels = np.clip(ramp * colour + rng.normal(0, 20, (480, 640, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:04d}.jpg", quality=90)


def loader_images_per_second(folder: Path, batch_size: int, crop: int, batches: int) -> dict[str, float]:
    """Images per second the training loader delivers (default workers), after its first batch."""
    dataset = TrainingImages([folder], CropSpec(resize=480, crop=crop))
    loader = iter(training_loader(dataset, batch_size, seed=0, iterations=batches + 1))
    next(loader)  # starts the workers
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    elapsed = time.perf_counter() - started
    return {"workers": default_workers(), "images_per_second": batches * batch_size / elapsed}


def data_wait_fraction(folder: Path, weights: Path, args: argparse.Namespace, iterations: int = 4) -> float:
    """Median share of a ``Trainer.train`` iteration (tiny NRP) spent waiting for data, the first left out."""
    run = folder / "wait_run"
    config = TrainConfig(
        data=[str(folder / "jpegs")], out=str(run), batch_size=args.batch_size, crop=args.crop, ssp_steps=args.ssp_steps,
        backbone_weights=str(weights), iterations=iterations, log_every=1, checkpoint_every=iterations, val_every=iterations,
        **PURIFIERS["tiny NRP (width 16, 2 blocks, growth 8)"],
    )
    Trainer(config).train()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["data_wait_fraction"] for r in records if r["split"] == "train" and r["iteration"] > 1)


def make_config(folder: Path, weights: Path, overrides: dict[str, Any], args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        data=[str(folder / "photos")], out=str(folder / "run"), batch_size=args.batch_size, crop=args.crop,
        resize=args.crop, ssp_steps=args.ssp_steps, backbone_weights=str(weights), workers=0, **overrides,
    )


def cpu_and_faults() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_minflt


def measure_updates(settings: dict[str, Any]) -> dict[str, float]:
    """In this process: CPU-seconds and minor faults per purifier update of ``settings`` (after one warm-up)."""
    torch.manual_seed(0)
    folder = Path(settings["folder"])
    config = TrainConfig(
        data=[str(folder / "photos")], out=str(folder / f"run_{settings['index']}"), batch_size=settings["batch_size"],
        crop=settings["crop"], resize=settings["crop"], ssp_steps=settings["ssp_steps"], backbone_weights=str(folder / "lite0.pth"),
        workers=0, updates_per_batch=settings["updates_per_batch"], retain_heap=settings["retain_heap"],
        precision=settings["precision"], channels_last=settings["channels_last"], **SHIPPED_SETUP,
    )
    trainer = Trainer(config)
    clean = torch.rand(settings["batch_size"], 3, settings["crop"], settings["crop"])
    trainer.train_step(clean)  # warm-up (oneDNN picks its kernels on the first call)
    cpu, faults = cpu_and_faults()
    for _ in range(settings["iterations"]):
        trainer.train_step(clean)
    cpu_after, faults_after = cpu_and_faults()
    updates = settings["iterations"] * settings["updates_per_batch"]
    return {
        "cpu_seconds_per_update": (cpu_after - cpu) / updates,
        "minor_faults_per_update": (faults_after - faults) / updates,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def updates_per_cpu_second(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Each of :data:`UPDATE_SETTINGS` in its own process, interleaved over ``args.rounds`` rounds; medians."""
    torch.save(build_backbone("efficientnet-lite0", pretrained=False)[0].state_dict(), folder / "lite0.pth")
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in UPDATE_SETTINGS}
    for _ in range(args.rounds):
        for index, (label, overrides) in enumerate(UPDATE_SETTINGS.items()):
            settings = {
                "folder": str(folder), "index": index, "batch_size": args.batch_size, "crop": args.crop,
                "ssp_steps": args.ssp_steps, "iterations": args.update_iterations, **overrides,
            }
            child = subprocess.run([sys.executable, __file__, "--child", json.dumps(settings)], capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(f"{label}: the measuring process failed:\n{child.stderr}")
            rounds[label].append(json.loads(child.stdout.splitlines()[-1]))
    results: dict[str, Any] = {}
    before = None
    for label, measured in rounds.items():
        median = {key: statistics.median(r[key] for r in measured) for key in measured[0]}
        before = before or median["cpu_seconds_per_update"]
        median["updates_per_cpu_hour"] = 3600 / median["cpu_seconds_per_update"]
        median["speed_up"] = before / median["cpu_seconds_per_update"]
        results[label] = {"median": median, "rounds": measured}
        print(f"{label}: {median['cpu_seconds_per_update']:.2f} CPU-s per update ({median['speed_up']:.2f}x), "
              f"{median['minor_faults_per_update']:.0f} minor faults per update, peak RSS {median['peak_rss_mb']:.0f} MB",
              flush=True)
    return results


def iteration_parts(folder: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The iteration split of each of :data:`PURIFIERS`, then the loader's rate and data wait, into ``results``."""
    results["purifiers"] = {}
    weights = folder / "vgg16_conv3_3.pth"
    torch.save({f"features.{k}": v for k, v in torchvision.models.vgg16(weights=None).features[:16].state_dict().items()}, weights)
    clean = torch.rand(args.batch_size, 3, args.crop, args.crop)
    for label, overrides in PURIFIERS.items():
        trainer = Trainer(make_config(folder, weights, overrides, args))
        measure(trainer, clean, args.ssp_steps)  # warm-up
        rounds = [measure(trainer, clean, args.ssp_steps) for _ in range(args.rounds)]
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        median["ssp_ratio"] = median["ssp"] / median["ssp_lower_bound"]
        results["purifiers"][label] = {"median_seconds": median, "rounds": rounds}
        print(f"{label}: iteration {median['iteration']:.2f} s = ssp {median['ssp']:.2f} + purifier "
              f"{median['purifier']:.2f} + critic {median['critic']:.2f}; ssp / lower bound "
              f"{median['ssp_ratio']:.3f} (target <= {TARGET_RATIO})", flush=True)
    write_photos(folder / "jpegs", 64)
    loader = loader_images_per_second(folder / "jpegs", args.batch_size, args.crop, args.loader_batches)
    for label, measured in results["purifiers"].items():
        consumed = args.batch_size / measured["median_seconds"]["iteration"]
        loader[f"margin over {label}"] = loader["images_per_second"] / consumed
    loader["data_wait_fraction"] = data_wait_fraction(folder, weights, args)
    results["loader"] = loader
    margins = ", ".join(f"{value:.0f}x" for key, value in loader.items() if key.startswith("margin"))
    print(f"loader ({loader['workers']} workers): {loader['images_per_second']:.0f} images/s = {margins} what an iteration "
          f"consumes (target >= {TARGET_LOADER_MARGIN:g}x); waiting for data: {100 * loader['data_wait_fraction']:.2f}% "
          "of an iteration", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--ssp-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="timed iterations after one warm-up")
    parser.add_argument("--loader-batches", type=int, default=20, help="batches timed for the loader alone")
    parser.add_argument("--out", type=Path, help=f"JSON results (default {DEFAULT_OUT}; {UPDATES_OUT} with --only updates)")
    parser.add_argument("--only", choices=("iteration", "updates"), help="run one part: the iteration split (with the "
                        "loader) or the updates per CPU-second; default both")
    parser.add_argument("--update-iterations", type=int, default=2, help="timed iterations per setting and round")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_updates(json.loads(args.child))))
        return
    info = machine_info()
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, {info['torch_threads']} threads")

    args.out = args.out or (UPDATES_OUT if args.only == "updates" else DEFAULT_OUT)
    results: dict[str, Any] = {"settings": vars(args) | {"out": str(args.out)}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "photos").mkdir()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (args.crop, args.crop, 3), dtype=np.uint8)).save(folder / "photos" / "0.png")
        if args.only != "updates":
            iteration_parts(folder, args, results)
        if args.only != "iteration":
            results["updates_per_cpu_second"] = updates_per_cpu_second(folder, args)
    results["machine"] = {**info, "load_average_at_end": load_average()}
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
