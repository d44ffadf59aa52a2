"""nrp's FIA, NAA, ILPD, BSR and Admix against torchattack's at the same settings, on one ResNet-18.

Both libraries get the same random-weight torchvision ResNet-18 (eval mode, parameters left trainable as a
user's model would be), the same images and labels, eps 16/255, ``steps`` iterations of eps/10 with momentum
1.0, and each attack's paper defaults (FIA: 30 masks, p_d 0.3; NAA: 30 path points; ILPD: coef 0.1, sigma
0.05; BSR: 20 copies, 3 blocks, 24 degrees; Admix: 5 scales x 3 mixes, eta 0.2, nrp in passes of 5 copies,
and as ``admix_one_pass`` in one pass of all 15). The feature-level attacks
use ``layer2``. The global generator is reseeded before each call, which aligns FIA's masks, ILPD's noise and
Admix's permutations (the JSON's largest output difference shows it); BSR's draws cannot be aligned.

"Time per step" at equal settings is time per call divided by the same number of steps for both, so the
call ratio is the step ratio. The headline is the median over rounds of the per-round ratio of process CPU
seconds (``ratio cpu``), which other processes on a shared machine disturb less than wall time; run it with
``--threads 1`` so that CPU time is one core's.

Usage::

    python benchmarks/bench_feature_attacks.py                       # batch 2 at 224, 5 steps, 3 rounds
    OMP_NUM_THREADS=1 nice -n 12 python benchmarks/bench_feature_attacks.py --threads 1 --batch-size 1 --steps 3 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
import torchvision

from bench_attacks import print_table, summarise, time_rounds, timed
from machine import add_run_arguments, load_average, start_run, write_json
from nrp.attacks import admix, bsr, fia, ilpd, naa

EPS = 16 / 255
LAYER = "layer2"
DEFAULT_OUT = Path(__file__).parent / "results" / "feature_attacks.json"
# ``admix_one_pass`` is nrp's Admix with all 15 copies in one pass (``pass_size=None``) against the same
# torchattack call: it shows how much of Admix's ratio its default passes of 5 account for.
ATTACKS = ("fia", "naa", "ilpd", "bsr", "admix", "admix_one_pass")
LIBRARIES = ("nrp", "torchattack")


def build_attacks(model: torch.nn.Module, steps: int) -> dict[str, dict]:
    """``{attack: {library: run(x, y)}}`` at equal settings."""
    import torchattack

    cpu = torch.device("cpu")
    common = {"eps": EPS, "steps": steps, "alpha": EPS / steps, "decay": 1.0, "device": cpu}
    theirs = {
        "fia": torchattack.FIA(model, feature_layer_cfg=LAYER, num_ens=30, drop_rate=0.3, **common),
        "naa": torchattack.NAA(model, feature_layer_cfg=LAYER, num_ens=30, **common),
        "ilpd": torchattack.ILPD(model, feature_layer_cfg=LAYER, sigma=0.05, coef=0.1, **common),
        "bsr": torchattack.BSR(model, num_scale=20, num_block=3, **common),
        "admix": torchattack.Admix(model, portion=0.2, size=3, num_classes=1000, **common),
    }
    theirs["admix_one_pass"] = theirs["admix"]
    mine = {"eps": EPS, "steps": steps, "step_size": EPS / steps, "momentum": 1.0}
    ours = {
        "fia": lambda x, y: fia(model, x, y, layer=LAYER, **mine),
        "naa": lambda x, y: naa(model, x, y, layer=LAYER, **mine),
        "ilpd": lambda x, y: ilpd(model, x, y, layer=LAYER, **mine),
        "bsr": lambda x, y: bsr(model, x, y, **mine),
        "admix": lambda x, y: admix(model, x, y, **mine),
        "admix_one_pass": lambda x, y: admix(model, x, y, pass_size=None, **mine),
    }
    return {name: {"nrp": ours[name], "torchattack": theirs[name]} for name in ATTACKS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one 1-step warm-up round")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, default=list(ATTACKS), help="a subset to time")
    add_run_arguments(parser, DEFAULT_OUT)
    args = parser.parse_args()

    info = start_run(args)
    info["torchattack_version"] = __import__("torchattack").__version__
    print(f"{info['cpu_model']}, {info['cpu_cores']} cores, torch {info['torch_version']}, "
          f"{info['torch_threads']} threads, load {info['load_average_at_start']}", flush=True)

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 1000, (args.batch_size,))
    names = tuple(args.attacks)
    warm_up = build_attacks(model, steps=1)
    for name in names:
        for library in LIBRARIES:
            timed(warm_up[name][library], x, y, args.seed)
    rounds, largest_difference = time_rounds(build_attacks(model, args.steps), names, LIBRARIES, x, y, args.rounds, args.seed)
    settings = {
        "model": "torchvision resnet18, random weights, eval mode", "layer": LAYER,
        "batch_size": args.batch_size, "image_size": args.image_size, "steps": args.steps, "rounds": args.rounds,
        "eps": EPS, "step_size": EPS / args.steps, "momentum": 1.0,
        "fia": {"ensemble": 30, "drop_prob": 0.3}, "naa": {"path_steps": 30}, "ilpd": {"coef": 0.1, "sigma": 0.05},
        "bsr": {"copies": 20, "blocks": 3, "max_angle": 24}, "admix": {"scales": 5, "copies": 3, "portion": 0.2, "pass_size": 5},
    }
    results = summarise(rounds, settings, names, LIBRARIES)
    results["largest_output_difference"] = largest_difference
    results["machine"] = {**info, "load_average_at_end": load_average()}
    for name in names:  # CPU seconds per step, median over rounds
        results["attacks"][name]["cpu_seconds_per_step"] = {
            library: statistics.median(r[name][library]["cpu"] for r in rounds) / args.steps for library in LIBRARIES}
    print_table(results)
    print("CPU seconds per step (median): " + ", ".join(
        f"{name} {results['attacks'][name]['cpu_seconds_per_step']['nrp']:.3f}/"
        f"{results['attacks'][name]['cpu_seconds_per_step']['torchattack']:.3f}" for name in names))
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
