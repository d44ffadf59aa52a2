"""How much feature distortion SSP reaches with fewer steps: can training craft its batch for less?

An NRP training iteration spends about half its time crafting SSP (``ssp_steps`` forward + backward passes
of the feature extractor). This measures, on real training crops and the shipped purifier's feature layer
(EfficientNet-Lite0 ``_blocks.4``, pretrained), the MSE feature distortion ``|F(x') - F(x)|^2`` (SSP's own
objective) reached by

* the training default: 10 steps of 2.55/255, read after every step (so 1, 2, 3, 5 steps of the same size);
* fewer, larger steps: ``k`` steps of ``max(2.55, 1.6 * 16 / k)``/255, for ``k`` in ``--steps``;

with eps 16/255, on a batch of 16 centre crops of 128x128 (the training batch size), from SSP's standard-normal
start with the same seed.
The time of each configuration is measured in the same run.

Usage::

    PYTHONPATH=src python benchmarks/bench_ssp_steps.py --photos ~/.cache/nrp/offline/photos/train
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from machine import add_run_arguments, start_run, write_json
from nrp.attacks.ssp import ssp
from nrp.features import build_feature_extractor
from nrp.io import find_images, read_image
from nrp.training.data import resize_short_side

DEFAULT_OUT = Path(__file__).parent / "results" / "ssp_steps.json"
EPS = 16 / 255
STEP = 2.55 / 255


def distortion(extractor, clean_features: torch.Tensor, x_adv: torch.Tensor) -> float:
    """Mean over the batch of the per-image MSE feature distance."""
    with torch.no_grad():
        return float((extractor(x_adv) - clean_features).pow(2).flatten(1).mean(1).mean())


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return image[:, top:top + size, left:left + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="folder of training photos")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[3, 5])
    add_run_arguments(parser, DEFAULT_OUT)
    args = parser.parse_args()
    machine = start_run(args)
    extractor = build_feature_extractor("efficientnet-lite0", "_blocks.4").eval()
    # The centre 128x128 crop of the first photos, resized as training resizes them (short side 480).
    paths = [source.path for source in find_images([args.photos])][:args.batch_size]
    x = torch.stack([_centre_crop(resize_short_side(read_image(path), 480), 128) for path in paths])
    with torch.no_grad():
        clean = extractor(x)
    per_step: list[float] = []
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(args.seed)
    reference = ssp(x, extractor, EPS, STEP, 10, generator=generator,
                    on_step=lambda step, value: per_step.append(float(value.mean())))
    results = {"10 x 2.55": {"steps": 10, "step_size_255": 2.55, "seconds": time.perf_counter() - start,
                             "distortion": distortion(extractor, clean, reference),
                             "distortion_after_step": per_step[1:] + [distortion(extractor, clean, reference)]}}
    for steps in args.steps:
        step_size = max(STEP, 1.6 * EPS / steps)
        generator = torch.Generator().manual_seed(args.seed)
        start = time.perf_counter()
        x_adv = ssp(x, extractor, EPS, step_size, steps, generator=generator)
        results[f"{steps} x {step_size * 255:.2f}"] = {"steps": steps, "step_size_255": step_size * 255,
                                                       "seconds": time.perf_counter() - start,
                                                       "distortion": distortion(extractor, clean, x_adv)}
    base = results["10 x 2.55"]
    for name, row in results.items():
        row["distortion_vs_10_steps"] = row["distortion"] / base["distortion"]
        row["time_vs_10_steps"] = row["seconds"] / base["seconds"]
        print(f"{name:>10}: distortion {row['distortion']:.3f} ({row['distortion_vs_10_steps']:.2f}x), "
              f"{row['seconds']:.1f} s ({row['time_vs_10_steps']:.2f}x)")
    print("10 x 2.55 after each step:", ", ".join(f"{value:.3f}" for value in base["distortion_after_step"]))
    write_json(args.out, {"machine": machine, "batch_size": args.batch_size, "results": results,
                          "median_seconds": statistics.median(row["seconds"] for row in results.values())})


if __name__ == "__main__":
    main()
