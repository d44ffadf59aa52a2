"""How close nrp's SSP comes to the cost of its own gradient, and how it compares with torchattack's SSP.

The unit is one batch-step: one forward through the truncated feature extractor plus one backward to the
input. Three things are timed side by side, in rounds whose order rotates, so machine noise hits all alike:

* baseline: the bare batch-step ``autograd.grad(extractor(x).sum(), x)``, repeated ``steps`` times;
* nrp: one full ``ssp(x, extractor, steps=steps)`` call (clean-feature forward and random start included);
* torchattack: one full ``torchattack.SSP`` call at the same eps, step size and steps, on the same random
  VGG16 weights and ImageNet normalisation, cut at the same depth (``features[:16]``).

Usage::

    PYTHONPATH=src python benchmarks/bench_ssp.py                       # 4 x 224 x 224, 10 steps, 3 rounds
    PYTHONPATH=src python benchmarks/bench_ssp.py --rounds 5 --out benchmarks/results/ssp.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torchvision
from torch import nn

from machine import add_run_arguments, load_average, start_run, write_json
from nrp.attacks import ssp
from nrp.features import FeatureExtractor, build_feature_extractor

TARGET_RATIO = 1.15  # nrp batch-step / baseline batch-step, from the issue
TARGET_SPEEDUP = 2.5  # torchattack time / nrp time, from the issue
VGG16_CONV3_3_DEPTH = 16  # features[:16]: up to and including the ReLU after conv3_3
DEFAULT_OUT = Path(__file__).parent / "results" / "ssp.json"


def baseline_steps(extractor: nn.Module, x: torch.Tensor, steps: int) -> dict[str, Any]:
    """Seconds of ``steps`` bare batch-steps (features, a scalar of them, gradient to the input only).

    ``total``: wall-clock seconds of all steps; ``cpu``: process CPU seconds (all threads) of all steps;
    ``steps``: wall-clock seconds of each step.
    """
    times = []
    cpu_start = time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        x_in = x.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(extractor(x_in).sum(), x_in)
        times.append(time.perf_counter() - start)
    return {"total": sum(times), "cpu": time.process_time() - cpu_start, "steps": times}


def nrp_ssp(extractor: nn.Module, x: torch.Tensor, eps: float, step_size: float, steps: int) -> dict[str, Any]:
    """Seconds of one ``ssp`` call (wall and process CPU), and of each loop step after the first.

    Loop steps are timed between ``on_step`` callbacks; the time to the first callback (``first``) also
    holds input validation, the clean-feature forward and the random start.
    """
    stamps: list[float] = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    ssp(x, extractor, eps=eps, step_size=step_size, steps=steps, on_step=lambda step, _: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    return {
        "total": total,
        "cpu": time.process_time() - cpu_start,
        "first": stamps[0] - start,
        "loop_steps": [b - a for a, b in zip(stamps, stamps[1:])],
    }


def clean_forward(extractor: nn.Module, x: torch.Tensor) -> float:
    """Seconds of one no-grad forward: the clean-feature pass ``ssp`` adds to its ``steps`` batch-steps."""
    start = time.perf_counter()
    with torch.no_grad():
        extractor(x)
    return time.perf_counter() - start


def build_torchattack_ssp(extractor: FeatureExtractor, eps: float, step_size: float, steps: int):
    """``torchattack.SSP`` on the same random VGG16 weights, normalisation and depth as ``extractor``.

    torchattack asks torchvision for ImageNet VGG16 weights; torchvision's ``vgg16`` is swapped for one
    that ignores the request while the attack is built, so nothing downloads. Its parameters keep
    ``requires_grad=True`` as torchattack leaves them: that cost is part of what is being compared.
    """
    import torchattack

    build_vgg16 = torchvision.models.vgg16

    def random_vgg16(*args: Any, weights: Any = None, **kwargs: Any) -> nn.Module:
        return build_vgg16(weights=None, **kwargs)

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return (images - extractor.mean) / extractor.std

    with mock.patch.object(torchvision.models, "vgg16", random_vgg16):
        attack = torchattack.SSP(
            nn.Sequential(), normalize=normalize, device=torch.device("cpu"),
            eps=eps, steps=steps, alpha=step_size, ssp_layer=VGG16_CONV3_3_DEPTH,
        )
    prefix = "body.graph.features."
    weights = {key[len(prefix):]: value for key, value in extractor.state_dict().items() if key.startswith(prefix)}
    attack.perceptual_criteria.perceptual_model.load_state_dict(weights)
    return attack


def same_network_error(extractor: FeatureExtractor, attack, x: torch.Tensor) -> float:
    """Largest absolute difference between nrp's and torchattack's features of ``x`` (0 means same network)."""
    with torch.no_grad():
        theirs = attack.perceptual_criteria.perceptual_model(attack.normalize(x))
        return (extractor(x) - theirs).abs().max().item()


def torchattack_ssp(attack, x: torch.Tensor) -> dict[str, float]:
    """Seconds of one ``torchattack.SSP`` call, wall and process CPU (it needs no labels)."""
    cpu_start = time.process_time()
    start = time.perf_counter()
    attack(x, None)
    return {"total": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one short warm-up round")
    parser.add_argument("--eps", type=float, default=16.0, help="L-inf budget, 0-255 units")
    parser.add_argument("--step-size", type=float, default=0.01, help="[0, 1] units, the authors' 0.01")
    parser.add_argument("--skip-torchattack", action="store_true")
    add_run_arguments(parser, DEFAULT_OUT)
    args = parser.parse_args()

    eps = args.eps / 255
    info = start_run(args)
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, "
          f"{info['torch_threads']} threads, load {info['load_average_at_start']}")

    extractor = build_feature_extractor("vgg16", "conv3_3", pretrained=False)
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size)
    attack = None
    if not args.skip_torchattack:
        attack = build_torchattack_ssp(extractor, eps, args.step_size, args.steps)
        info["torchattack_version"] = __import__("torchattack").__version__
        info["torchattack_same_features_max_abs_diff"] = same_network_error(extractor, attack, x)

    def run(method: str, steps: int) -> Any:
        if method == "baseline":
            return baseline_steps(extractor, x, steps)
        if method == "nrp":
            return nrp_ssp(extractor, x, eps, args.step_size, steps)
        if method == "clean_forward":
            return clean_forward(extractor, x)
        attack.steps = steps
        return torchattack_ssp(attack, x)

    methods = ["baseline", "nrp", "clean_forward"] + ([] if attack is None else ["torchattack"])
    for method in methods:  # warm-up: allocator, thread pool, oneDNN kernels
        run(method, 2)
    rounds: list[dict[str, Any]] = []
    for index in range(args.rounds):
        order = methods[index % len(methods):] + methods[:index % len(methods)]
        measured = {method: run(method, args.steps) for method in order}
        rounds.append(measured)
        line = f"round {index + 1}/{args.rounds}: baseline {measured['baseline']['total']:.2f} s, nrp {measured['nrp']['total']:.2f} s"
        print(line + (f", torchattack {measured['torchattack']['total']:.2f} s" if attack is not None else ""), flush=True)

    results = summarise(rounds, args, attack is not None)
    results["machine"] = {**info, "load_average_at_end": load_average()}
    print_table(results)
    write_json(args.out, results)
    print(f"wrote {args.out}")


def summarise(rounds: list[dict[str, Any]], args: argparse.Namespace, with_torchattack: bool) -> dict[str, Any]:
    """Per-batch-step times and ratios over the rounds, by three estimators.

    ``median``: median over rounds of the ratio within each round (each pair measured side by side; the
    headline). ``min``: ratio of the fastest rounds; interference from other processes only ever adds time,
    so on a busy machine this is the better estimate of the true cost. ``cpu``: median over rounds of the
    ratio of process CPU seconds, insensitive to being descheduled but inflated by spinning worker threads.
    """
    steps = args.steps
    methods = ["baseline", "nrp"] + (["torchattack"] if with_torchattack else [])
    wall = {m: [r[m]["total"] / steps for r in rounds] for m in methods}
    cpu = {m: [r[m]["cpu"] / steps for r in rounds] for m in methods}

    def ratios(numerator: str, denominator: str) -> dict[str, Any]:
        per_round = [n / d for n, d in zip(wall[numerator], wall[denominator])]
        return {
            "median": statistics.median(per_round),
            "min": min(wall[numerator]) / min(wall[denominator]),
            "cpu": statistics.median(n / d for n, d in zip(cpu[numerator], cpu[denominator])),
            "per_round": per_round,
        }

    loop_steps = [t for r in rounds for t in r["nrp"]["loop_steps"]]
    baseline_steps_ = [t for r in rounds for t in r["baseline"]["steps"]]
    nrp_ratio = ratios("nrp", "baseline")
    nrp_ratio["loop_step_median"] = statistics.median(loop_steps) / statistics.median(baseline_steps_)
    nrp_ratio["loop_step_min"] = min(loop_steps) / min(baseline_steps_)
    results: dict[str, Any] = {
        "settings": {
            "batch_size": args.batch_size, "image_size": args.image_size, "steps": steps, "rounds": args.rounds,
            "eps": args.eps / 255, "step_size": args.step_size,
            "feature_extractor": "vgg16 features[:16] (conv3_3 after ReLU), random weights, ImageNet normalisation",
        },
        "seconds_per_batch_step": {
            **{f"{m}_median": statistics.median(wall[m]) for m in methods},
            **{f"{m}_min": min(wall[m]) for m in methods},
            **{f"{m}_cpu_median": statistics.median(cpu[m]) for m in methods},
            "nrp_loop_step_median": statistics.median(loop_steps),
            "nrp_loop_step_min": min(loop_steps),
            "baseline_single_step_median": statistics.median(baseline_steps_),
            "baseline_single_step_min": min(baseline_steps_),
            "clean_forward_no_grad_median": statistics.median(r["clean_forward"] for r in rounds),
            "clean_forward_no_grad_min": min(r["clean_forward"] for r in rounds),
        },
        "ratio_nrp_to_baseline": nrp_ratio,
        "target_ratio": TARGET_RATIO,
        "ratio_met": {key: nrp_ratio[key] <= TARGET_RATIO for key in ("median", "min", "cpu")},
        "rounds_seconds": rounds,
    }
    if with_torchattack:
        speedup = ratios("torchattack", "nrp")
        results["ratio_torchattack_to_baseline"] = ratios("torchattack", "baseline")
        results["speedup_over_torchattack"] = speedup
        results["target_speedup"] = TARGET_SPEEDUP
        results["speedup_met"] = {key: speedup[key] >= TARGET_SPEEDUP for key in ("median", "min", "cpu")}
    return results


def print_table(results: dict[str, Any]) -> None:
    times = results["seconds_per_batch_step"]
    settings = results["settings"]
    print(f"\nSSP, batch {settings['batch_size']} x {settings['image_size']}x{settings['image_size']}, "
          f"{settings['steps']} steps, {settings['rounds']} rounds; seconds per batch-step")
    print(f"{'':46}{'median':>9}{'min':>9}{'cpu med':>9}")
    rows = [
        ("baseline: forward + input-gradient backward", "baseline"),
        ("nrp ssp (whole call / steps)", "nrp"),
        ("torchattack SSP (whole call / steps)", "torchattack"),
    ]
    for name, key in rows:
        if f"{key}_median" in times:
            print(f"{name:46}{times[key + '_median']:9.3f}{times[key + '_min']:9.3f}{times[key + '_cpu_median']:9.3f}")
    for name, key in [("nrp ssp, one loop step", "nrp_loop_step"), ("baseline, one step", "baseline_single_step"),
                      ("clean-feature forward, no grad (once/call)", "clean_forward_no_grad")]:
        print(f"{name:46}{times[key + '_median']:9.3f}{times[key + '_min']:9.3f}{'':>9}")

    def line(label: str, ratio: dict[str, Any], target: str, met: dict[str, bool]) -> None:
        verdicts = ", ".join(f"{key} {ratio[key]:.3f} ({'met' if met[key] else 'NOT met'})" for key in ("median", "min", "cpu"))
        print(f"{label} (target {target}): {verdicts}; per round {', '.join(f'{r:.3f}' for r in ratio['per_round'])}")

    ratio = results["ratio_nrp_to_baseline"]
    print()
    line("nrp / baseline", ratio, f"<= {TARGET_RATIO}", results["ratio_met"])
    print(f"  one loop step / one baseline step: median {ratio['loop_step_median']:.3f}, min {ratio['loop_step_min']:.3f}")
    if "speedup_over_torchattack" in results:
        line("torchattack / nrp", results["speedup_over_torchattack"], f">= {TARGET_SPEEDUP}", results["speedup_met"])


if __name__ == "__main__":
    main()
