"""nrp's transfer attacks against torchattacks at the same settings: one ResNet-18, batch 16 at 224x224.

Five attacks, each run by both libraries on the same random-weight ResNet-18 (eval mode, parameters left
trainable as a user's model would be), the same images and labels, eps 16/255:

* ``fgsm``: one step of eps (``nrp.attacks.fgsm`` / ``torchattacks.FGSM``);
* ``pgd``: uniform random start, ``steps`` steps of 2/255 (``pgd`` / ``PGD``);
* ``mi_fgsm``: momentum 1.0, ``steps`` steps of 1.6/255 (``mi_fgsm`` / ``MIFGSM``);
* ``dim``: DIM with momentum 1.0, probability 0.7, resize range 0.9 (``dim`` / ``DIFGSM``);
* ``ti``: the paper's DIM-TI, momentum 1.0, probability 0.7, 15x15 Gaussian (``dim_ti_fgsm`` / ``TIFGSM``).

Before each call the global generator is reseeded, and both libraries draw the random start and DIM's
resize-and-pad from it in the same order, so both do the same work (the JSON records the largest difference
between their outputs as proof). One short warm-up round (1 step each) comes first; the timed rounds then
run all ten (attack, library) pairs, rotating the order each round so machine noise hits all alike.

Usage::

    python benchmarks/bench_attacks.py                          # 3 rounds, 10 steps: about 3.5 min on 2 idle cores
    python benchmarks/bench_attacks.py --rounds 5 --steps 10 --out benchmarks/results/attacks.json
    python benchmarks/bench_attacks.py --batch-size 4 --image-size 64 --rounds 2    # quick look
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision

from machine import add_run_arguments, load_average, start_run, write_json
from nrp.attacks import dim, dim_ti_fgsm, fgsm, mi_fgsm, pgd

TARGET_RATIO = 1.0  # nrp time / torchattacks time, from the issue
EPS = 16 / 255
DEFAULT_OUT = Path(__file__).parent / "results" / "attacks.json"
ATTACKS = ("fgsm", "pgd", "mi_fgsm", "dim", "ti")
LIBRARIES = ("nrp", "torchattacks")


def build_attacks(model: torch.nn.Module, steps: int) -> dict[str, dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]]:
    """``{attack: {library: run(x, y)}}`` at equal settings."""
    import torchattacks

    theirs = {
        "fgsm": torchattacks.FGSM(model, eps=EPS),
        "pgd": torchattacks.PGD(model, eps=EPS, alpha=2 / 255, steps=steps, random_start=True),
        "mi_fgsm": torchattacks.MIFGSM(model, eps=EPS, alpha=1.6 / 255, steps=steps, decay=1.0),
        "dim": torchattacks.DIFGSM(model, eps=EPS, alpha=1.6 / 255, steps=steps, decay=1.0, resize_rate=0.9,
                                   diversity_prob=0.7),
        "ti": torchattacks.TIFGSM(model, eps=EPS, alpha=1.6 / 255, steps=steps, decay=1.0, len_kernel=15, nsig=3,
                                  resize_rate=0.9, diversity_prob=0.7),
    }
    ours = {
        "fgsm": lambda x, y: fgsm(model, x, y, eps=EPS),
        "pgd": lambda x, y: pgd(model, x, y, eps=EPS, step_size=2 / 255, steps=steps),
        "mi_fgsm": lambda x, y: mi_fgsm(model, x, y, eps=EPS, step_size=1.6 / 255, steps=steps, momentum=1.0),
        "dim": lambda x, y: dim(model, x, y, eps=EPS, step_size=1.6 / 255, steps=steps, momentum=1.0,
                                diversity_prob=0.7, diversity_scale=0.9),
        "ti": lambda x, y: dim_ti_fgsm(model, x, y, eps=EPS, step_size=1.6 / 255, steps=steps, momentum=1.0,
                                       diversity_prob=0.7, diversity_scale=0.9, ti_kernel=15),
    }
    return {name: {"nrp": ours[name], "torchattacks": theirs[name]} for name in ATTACKS}


def timed(run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, Any]:
    """Wall and process-CPU seconds of one call, after reseeding the global generator; and its output."""
    torch.manual_seed(seed)
    cpu_start = time.process_time()
    start = time.perf_counter()
    adversarial = run(x, y)
    return {"total": time.perf_counter() - start, "cpu": time.process_time() - cpu_start, "output": adversarial}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="iterations of the iterative attacks (FGSM takes 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one 1-step warm-up round")
    add_run_arguments(parser, DEFAULT_OUT)
    args = parser.parse_args()

    info = start_run(args)
    info["torchattacks_version"] = __import__("torchattacks").__version__
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, "
          f"{info['torch_threads']} threads, load {info['load_average_at_start']}", flush=True)

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 1000, (args.batch_size,))

    warm_up = build_attacks(model, steps=1)  # allocator, thread pool, oneDNN kernels
    for name in ATTACKS:
        for library in LIBRARIES:
            timed(warm_up[name][library], x, y, args.seed)
    attacks = build_attacks(model, args.steps)
    rounds, largest_difference = time_rounds(attacks, ATTACKS, LIBRARIES, x, y, args.rounds, args.seed)
    settings = {
        "model": "torchvision resnet18, random weights, eval mode",
        "batch_size": args.batch_size, "image_size": args.image_size, "steps": args.steps,
        "fgsm_steps": 1, "rounds": args.rounds, "eps": EPS,
        "step_sizes": {"pgd": 2 / 255, "mi_fgsm": 1.6 / 255, "dim": 1.6 / 255, "ti": 1.6 / 255},
        "momentum": 1.0, "diversity_prob": 0.7, "diversity_scale": 0.9, "ti_kernel": 15,
    }
    results = summarise(rounds, settings, ATTACKS, LIBRARIES)
    results["largest_output_difference"] = largest_difference
    results["machine"] = {**info, "load_average_at_end": load_average()}
    print_table(results)
    write_json(args.out, results)
    print(f"wrote {args.out}")


def time_rounds(
    attacks: dict[str, dict[str, Callable]], names: tuple[str, ...], libraries: tuple[str, str], x: torch.Tensor,
    y: torch.Tensor, count: int, seed: int,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """``count`` timed rounds over every (attack, library) pair, rotating the order each round.

    Returns the per-round seconds and, per attack, the largest output difference between the two libraries.
    """
    ours, theirs = libraries
    pairs = [(name, library) for name in names for library in libraries]
    rounds: list[dict[str, dict[str, dict[str, float]]]] = []
    largest_difference = {name: 0.0 for name in names}
    for index in range(count):
        shift = index * 3 % len(pairs)  # rotate by an odd number, so each library also goes first for each attack
        measured: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
        outputs: dict[tuple[str, str], torch.Tensor] = {}
        for name, library in pairs[shift:] + pairs[:shift]:
            result = timed(attacks[name][library], x, y, seed + index)
            outputs[name, library] = result.pop("output")
            measured[name][library] = result
        for name in names:
            difference = (outputs[name, ours] - outputs[name, theirs].detach()).abs().max().item()
            largest_difference[name] = max(largest_difference[name], difference)
        rounds.append(measured)
        print(f"round {index + 1}/{count}: " + ", ".join(
            f"{name} {measured[name][ours]['total']:.2f}/{measured[name][theirs]['total']:.2f} s" for name in names
        ), flush=True)
    return rounds, largest_difference


def summarise(
    rounds: list[dict[str, Any]], settings: dict[str, Any], attacks: tuple[str, ...], libraries: tuple[str, str]
) -> dict[str, Any]:
    """Seconds per call and the ratio ``libraries[0] / libraries[1]`` per attack, by three estimators.

    ``median``: median over rounds of the ratio within each round (the headline). ``min``: ratio of the
    fastest calls; other processes only ever add time, so on a busy machine it is the better estimate.
    ``cpu``: median ratio of process CPU seconds (all threads).
    """
    ours, theirs = libraries
    per_attack: dict[str, Any] = {}
    for name in attacks:
        wall = {library: [r[name][library]["total"] for r in rounds] for library in libraries}
        cpu = {library: [r[name][library]["cpu"] for r in rounds] for library in libraries}
        per_round = [a / b for a, b in zip(wall[ours], wall[theirs])]
        ratio = {
            "median": statistics.median(per_round),
            "min": min(wall[ours]) / min(wall[theirs]),
            "cpu": statistics.median(a / b for a, b in zip(cpu[ours], cpu[theirs])),
            "per_round": per_round,
        }
        per_attack[name] = {
            "seconds": {f"{library}_{stat}": fn(wall[library]) for library in libraries
                        for stat, fn in (("median", statistics.median), ("min", min))},
            "ratio": ratio,
            "met": {key: ratio[key] <= TARGET_RATIO for key in ("median", "min", "cpu")},
        }
    return {
        "settings": settings,
        "libraries": list(libraries),
        "target_ratio": TARGET_RATIO,
        "attacks": per_attack,
        "rounds_seconds": rounds,
    }


def print_table(results: dict[str, Any]) -> None:
    """The summary as a plain-text table."""
    settings = results["settings"]
    ours, theirs = results["libraries"]
    print(f"\nResNet-18, batch {settings['batch_size']} x {settings['image_size']}x{settings['image_size']}, "
          f"{settings['steps']} steps, {settings['rounds']} rounds; seconds per call and {ours} / {theirs}")
    print(f"{'attack':10}{'ours med':>10}{'theirs med':>11}{'ratio med':>11}{'ratio min':>11}{'ratio cpu':>11}  target <= {TARGET_RATIO}")
    for name, entry in results["attacks"].items():
        seconds, ratio = entry["seconds"], entry["ratio"]
        verdict = "met" if entry["met"]["median"] else "NOT met"
        print(f"{name:10}{seconds[ours + '_median']:10.2f}{seconds[theirs + '_median']:11.2f}"
              f"{ratio['median']:11.3f}{ratio['min']:11.3f}{ratio['cpu']:11.3f}  {verdict}")


if __name__ == "__main__":
    main()
