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

Usage::

    python benchmarks/bench_train.py                      # batch 16, crop 128, 10 SSP steps, 2 rounds
    python benchmarks/bench_train.py --rounds 3 --out benchmarks/results/train.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image

from machine import load_average, machine_info, write_json
from nrp.training import TrainConfig, Trainer

TARGET_RATIO = 1.15
DEFAULT_OUT = Path(__file__).parent / "results" / "train.json"
PURIFIERS = {
    "tiny NRP (width 16, 2 blocks, growth 8)": {"purifier": "nrp", "width": 16, "blocks": 2, "growth": 8},
    "NRP_resG (authors' size)": {"purifier": "nrp_resg"},
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


def make_config(folder: Path, weights: Path, overrides: dict[str, Any], args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        data=[str(folder / "photos")], out=str(folder / "run"), batch_size=args.batch_size, crop=args.crop,
        resize=args.crop, ssp_steps=args.ssp_steps, backbone_weights=str(weights), workers=0, **overrides,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--ssp-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="timed iterations after one warm-up")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    info = machine_info()
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, {info['torch_threads']} threads")

    results: dict[str, Any] = {"settings": vars(args) | {"out": str(args.out)}, "purifiers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "photos").mkdir()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (args.crop, args.crop, 3), dtype=np.uint8)).save(folder / "photos" / "0.png")
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
    results["machine"] = {**info, "load_average_at_end": load_average()}
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
