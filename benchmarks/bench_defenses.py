"""JPEG, median filtering and TVM from ``nrp.defenses`` against ART's JpegCompression, SpatialSmoothing, TotalVarMin.

Both sides get the same batch (16 images at 224x224 by default: smooth random images plus +-8/255 sign noise,
like an adversarial perturbation) in their native form, a (B, 3, H, W) torch tensor for nrp and a
(B, H, W, 3) float32 NumPy array for ART, and the same settings:

* JPEG: quality 75, 4:2:0 chroma subsampling (Pillow's default, which ART gets by not choosing);
* median: window 3, SciPy's ``mode="reflect"`` borders (ART's) on both sides;
* TVM: keep probability 0.3 (ART's ``prob``), lambda 0.03, norm 2, and 10 iterations (ART's L-BFGS-B
  ``max_iter``; nrp's are primal-dual steps), plus nrp at its default 20 steps. Both minimise Guo et al.'s
  Eq. 4 with the same TV definition. ART's masks are made reproducible by seeding ``np.random`` before each
  call; the same masks are rebuilt here, and both outputs' objective is computed by one function,
  ``nrp.defenses.tv_objective``, with those masks (nrp's solver is run on them for that comparison).

Rounds rotate the order of the comparisons, and within one the calls alternate, so machine noise hits both
sides alike; JPEG and median calls are repeated ``--repeats`` times per round (the round's time is their
median), TVM runs once per round. One warm-up round on two images comes first.
Targets (from the issue): time ratio nrp / ART <= 1.2 for JPEG and median; ART / nrp >= 10 for TVM with an
equal or lower objective.

Usage::

    pip install "adversarial-robustness-toolbox>=1.20,<1.21"   # the bench extra; pulls scikit-learn, six, no torch
    PYTHONPATH=src python benchmarks/bench_defenses.py               # 3 rounds; 4-6 minutes on 2 busy cores
    PYTHONPATH=src python benchmarks/bench_defenses.py --threads 1 --out /tmp/defenses_1thread.json

Nearly all the time is ART's TotalVarMin: one SciPy L-BFGS-B run per image and channel, measured here at
1-7 s per 224x224 image depending on the machine's load and the image.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from machine import add_run_arguments, load_average, start_run, write_json
from nrp.defenses import jpeg_compress, median_blur, tv_minimize, tv_objective, tvm

TARGET_RATIO = 1.2  # nrp time / ART time, JPEG and median
TARGET_SPEEDUP = 10.0  # ART time / nrp time, TVM
DEFAULT_OUT = Path(__file__).parent / "results" / "defenses.json"
JPEG_QUALITY = 75
MEDIAN_WINDOW = 3
TVM_KEEP_PROB = 0.3
TVM_LAMB = 0.03
TVM_NORM = 2
TVM_ITERATIONS = 10
TVM_DEFAULT_STEPS = 20
REFERENCE_STEPS = 300  # a near-optimal reconstruction, to show how far each method got


def make_images(batch: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random images plus +-8/255 sign noise, ``(batch, 3, size, size)`` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 8, 8, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    noise = torch.randn(smooth.shape, generator=generator).sign() * (8 / 255)
    return (smooth + noise).clamp(0, 1)


def art_masks(x_nhwc: np.ndarray, prob: float, seed: int) -> np.ndarray:
    """The masks ART's TotalVarMin draws after ``np.random.seed(seed)``: one ``rand(H, W, C) < prob`` per image."""
    np.random.seed(seed)
    return np.stack([np.random.rand(*image.shape) < prob for image in x_nhwc]).astype(np.float32)


def timed(function: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Wall-clock and process CPU seconds of one call, and its result."""
    cpu_start = time.process_time()
    start = time.perf_counter()
    result = function()
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}, result


def build_methods(x: torch.Tensor, x_nhwc: np.ndarray, seed: int) -> dict[str, Callable[[], Any]]:
    """Each method as a closure over its own input; ART's TVM reseeds NumPy so its masks are always the same."""
    from art.defences.preprocessor import JpegCompression, SpatialSmoothing, TotalVarMin

    art_jpeg = JpegCompression(clip_values=(0.0, 1.0), quality=JPEG_QUALITY, channels_first=False)
    art_median = SpatialSmoothing(window_size=MEDIAN_WINDOW, channels_first=False, clip_values=(0.0, 1.0))
    art_tvm = TotalVarMin(prob=TVM_KEEP_PROB, norm=TVM_NORM, lamb=TVM_LAMB, max_iter=TVM_ITERATIONS, clip_values=(0.0, 1.0))
    generator = torch.Generator().manual_seed(seed)

    def art_tvm_call() -> np.ndarray:
        np.random.seed(seed)
        return art_tvm(x_nhwc)[0]

    return {
        "nrp_jpeg": lambda: jpeg_compress(x, JPEG_QUALITY, "4:2:0"),
        "art_jpeg": lambda: art_jpeg(x_nhwc)[0],
        "nrp_median": lambda: median_blur(x, MEDIAN_WINDOW),
        "art_median": lambda: art_median(x_nhwc)[0],
        "nrp_tvm": lambda: tvm(x, TVM_LAMB, TVM_KEEP_PROB, TVM_NORM, TVM_ITERATIONS, generator),
        "nrp_tvm_default_steps": lambda: tvm(x, TVM_LAMB, TVM_KEEP_PROB, TVM_NORM, TVM_DEFAULT_STEPS, generator),
        "art_tvm": art_tvm_call,
    }


def tvm_objectives(x: torch.Tensor, x_nhwc: np.ndarray, art_output: np.ndarray, seed: int) -> dict[str, Any]:
    """Guo et al.'s objective (summed over the batch) of each output, all on ART's masks, by one function."""
    masks_nhwc = art_masks(x_nhwc, TVM_KEEP_PROB, seed)
    masks = torch.from_numpy(masks_nhwc).permute(0, 3, 1, 2)
    # check the rebuilt masks are ART's: ART's own solver on the first image and its rebuilt mask must give
    # the first image of ART's batch output
    from art.defences.preprocessor import TotalVarMin

    solver = TotalVarMin(prob=TVM_KEEP_PROB, norm=TVM_NORM, lamb=TVM_LAMB, max_iter=TVM_ITERATIONS)
    first = np.clip(solver._minimize(x_nhwc[0], masks_nhwc[0].astype(int)), 0.0, 1.0)
    masks_verified = bool(np.allclose(first, art_output[0], atol=1e-6))
    outputs = {
        "input": x,
        "art": torch.from_numpy(art_output).permute(0, 3, 1, 2),
        "nrp": tv_minimize(x, masks, TVM_LAMB, TVM_NORM, TVM_ITERATIONS).clamp(0, 1),
        "nrp_default_steps": tv_minimize(x, masks, TVM_LAMB, TVM_NORM, TVM_DEFAULT_STEPS).clamp(0, 1),
        f"nrp_{REFERENCE_STEPS}_steps": tv_minimize(x, masks, TVM_LAMB, TVM_NORM, REFERENCE_STEPS).clamp(0, 1),
    }
    values = {name: tv_objective(z, x, masks, TVM_LAMB, TVM_NORM).sum().item() for name, z in outputs.items()}
    best = values[f"nrp_{REFERENCE_STEPS}_steps"]
    progress = {name: (values["input"] - value) / (values["input"] - best) for name, value in values.items()}
    return {"objective": values, "fraction_of_possible_decrease": progress,
            "mask_kept_fraction": masks.mean().item(), "masks_verified_against_art": masks_verified}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--repeats", type=int, default=10,
                        help="calls of JPEG and median per round (their median is the round's time); TVM: 1")
    add_run_arguments(parser, DEFAULT_OUT)
    args = parser.parse_args()

    import art

    info = start_run(args)
    info["art_version"] = art.__version__
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, "
          f"{info['torch_threads']} threads, ART {info['art_version']}, load {info['load_average_at_start']}")

    x = make_images(args.batch_size, args.image_size, args.seed)
    x_nhwc = x.permute(0, 2, 3, 1).contiguous().numpy()
    methods = build_methods(x, x_nhwc, args.seed)
    warm_up = build_methods(x[:2], x_nhwc[:2].copy(), args.seed)
    for function in warm_up.values():
        function()

    names = list(methods)
    rounds: list[dict[str, dict[str, float]]] = []
    outputs: dict[str, Any] = {}
    for index in range(args.rounds):
        measured = {}
        for group, members in rotated(GROUPS, index):
            calls: dict[str, list[dict[str, float]]] = {name: [] for name in members}
            for repeat in range(args.repeats if group != "tvm" else 1):
                for name in members if repeat % 2 == 0 else members[::-1]:  # alternate who goes first
                    seconds, outputs[name] = timed(methods[name])
                    calls[name].append(seconds)
            for name, times in calls.items():
                measured[name] = {key: statistics.median(t[key] for t in times) for key in ("wall", "cpu")}
                measured[name]["calls"] = len(times)
        rounds.append(measured)
        print(f"round {index + 1}/{args.rounds}: " + ", ".join(f"{n} {measured[n]['wall']:.3f} s" for n in names), flush=True)

    results = summarise(rounds, args)
    results["agreement"] = {
        "jpeg_max_abs_diff_nrp_vs_art": (outputs["nrp_jpeg"] - torch.from_numpy(outputs["art_jpeg"]).permute(0, 3, 1, 2)).abs().max().item(),
        "median_max_abs_diff_nrp_vs_art": (outputs["nrp_median"] - torch.from_numpy(outputs["art_median"]).permute(0, 3, 1, 2)).abs().max().item(),
        "note": "ART truncates x * 255 to uint8 before JPEG; nrp rounds (as nrp.io.write.to_uint8 and Pillow users do)",
    }
    results["tvm_quality"] = tvm_objectives(x, x_nhwc, outputs["art_tvm"], args.seed)
    results["tvm_quality"]["objective_met"] = (results["tvm_quality"]["objective"]["nrp"]
                                               <= results["tvm_quality"]["objective"]["art"])
    results["machine"] = {**info, "load_average_at_end": load_average()}
    print_table(results)
    write_json(args.out, results)
    print(f"wrote {args.out}")


GROUPS = {  # timed together, calls alternating; the short ones are repeated (--repeats) within each round
    "jpeg": ["nrp_jpeg", "art_jpeg"],
    "median": ["nrp_median", "art_median"],
    "tvm": ["nrp_tvm", "nrp_tvm_default_steps", "art_tvm"],
}


def rotated(groups: dict[str, list[str]], index: int) -> list[tuple[str, list[str]]]:
    """The groups in an order that rotates with the round ``index``."""
    items = list(groups.items())
    return items[index % len(items):] + items[:index % len(items)]


PAIRS = {  # row -> (nrp method, ART method, direction of the target)
    "jpeg": ("nrp_jpeg", "art_jpeg", "ratio"),
    "median": ("nrp_median", "art_median", "ratio"),
    "tvm": ("nrp_tvm", "art_tvm", "speedup"),
    "tvm_default_steps": ("nrp_tvm_default_steps", "art_tvm", "speedup"),
}


def summarise(rounds: list[dict[str, dict[str, float]]], args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per batch and nrp/ART ratios by three estimators.

    A round's time of a method is the median of its calls in that round.
    ``median``: median over rounds of the ratio within each round (the headline). ``min``: ratio of the
    fastest rounds (interference only adds time). ``cpu``: median ratio of process CPU seconds (nrp may use
    several threads, ART's SciPy and Pillow calls one).
    """
    names = list(rounds[0])
    wall = {n: [r[n]["wall"] for r in rounds] for n in names}
    cpu = {n: [r[n]["cpu"] for r in rounds] for n in names}
    comparisons = {}
    for row, (ours, theirs, direction) in PAIRS.items():
        per_round = [a / b for a, b in zip(wall[ours], wall[theirs])]
        ratio = {
            "median": statistics.median(per_round),
            "min": min(wall[ours]) / min(wall[theirs]),
            "cpu": statistics.median(a / b for a, b in zip(cpu[ours], cpu[theirs])),
            "per_round": per_round,
        }
        if direction == "ratio":
            comparisons[row] = {"ratio_nrp_to_art": ratio, "target_ratio_at_most": TARGET_RATIO,
                                "met": ratio["median"] <= TARGET_RATIO}
        else:
            speedup = {key: 1 / value for key, value in ratio.items() if key != "per_round"}
            speedup["per_round"] = [1 / value for value in per_round]
            comparisons[row] = {"speedup_art_over_nrp": speedup, "target_speedup_at_least": TARGET_SPEEDUP,
                                "met": speedup["median"] >= TARGET_SPEEDUP}
    return {
        "settings": {
            "batch_size": args.batch_size, "image_size": args.image_size, "rounds": args.rounds, "seed": args.seed,
            "repeats_per_round": {"jpeg": args.repeats, "median": args.repeats, "tvm": 1},
            "jpeg_quality": JPEG_QUALITY, "jpeg_subsampling": "4:2:0", "median_window": MEDIAN_WINDOW,
            "median_borders": "symmetric (SciPy mode='reflect') on both sides",
            "tvm": {"keep_prob": TVM_KEEP_PROB, "lamb": TVM_LAMB, "norm": TVM_NORM,
                    "iterations": TVM_ITERATIONS, "nrp_default_steps": TVM_DEFAULT_STEPS,
                    "art_solver": "L-BFGS-B, one per image and channel"},
            "images": "smooth random images (bicubic from 8x8) plus +-8/255 sign noise",
        },
        "seconds_per_batch": {
            **{f"{n}_median": statistics.median(wall[n]) for n in names},
            **{f"{n}_min": min(wall[n]) for n in names},
            **{f"{n}_cpu_median": statistics.median(cpu[n]) for n in names},
        },
        "comparisons": comparisons,
        "rounds_seconds": rounds,
    }


def print_table(results: dict[str, Any]) -> None:
    settings, times = results["settings"], results["seconds_per_batch"]
    print(f"\n{settings['batch_size']} images at {settings['image_size']}x{settings['image_size']}, "
          f"{settings['rounds']} rounds; seconds per batch (median over rounds)")
    print(f"{'':28}{'nrp s':>9}{'ART s':>9}{'nrp/ART':>9}{'min':>8}{'cpu':>8}  target")
    for row, (ours, theirs, direction) in PAIRS.items():
        comparison = results["comparisons"][row]
        key = "ratio_nrp_to_art" if direction == "ratio" else "speedup_art_over_nrp"
        values = comparison[key]
        shown = values if direction == "ratio" else {k: 1 / v for k, v in values.items() if k != "per_round"}
        target = (f"<= {TARGET_RATIO}" if direction == "ratio" else f"ART/nrp >= {TARGET_SPEEDUP:g} "
                  f"(got {values['median']:.1f}x)")
        print(f"{row:28}{times[ours + '_median']:9.3f}{times[theirs + '_median']:9.3f}{shown['median']:9.3f}"
              f"{shown['min']:8.3f}{shown['cpu']:8.3f}  {target} {'met' if comparison['met'] else 'NOT met'}")
    quality = results["tvm_quality"]
    print("\nTVM objective (Guo et al. Eq. 4, sum over the batch, ART's masks; lower is better):")
    for name, value in quality["objective"].items():
        print(f"  {name:24}{value:12.2f}   {100 * quality['fraction_of_possible_decrease'][name]:6.1f}% of the possible decrease")
    print(f"  nrp (10 steps) <= ART: {'met' if quality['objective_met'] else 'NOT met'}; "
          f"masks rebuilt as ART's: {quality['masks_verified_against_art']}")
    agreement = results["agreement"]
    print(f"\nmax |nrp - ART|: jpeg {agreement['jpeg_max_abs_diff_nrp_vs_art']:.4f} (ART truncates to uint8), "
          f"median {agreement['median_max_abs_diff_nrp_vs_art']:.4f}")


if __name__ == "__main__":
    main()
