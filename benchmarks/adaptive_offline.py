"""The adaptive table of the shipped NRP-Lite on the offline benchmark (docs/adaptive.md).

Defense: the shipped NRP-Lite purifier (``nrp_lite_shipped_dynamic``: the authors' dynamic noise, std 0.05
projected to 16/255, then the purifier); target: EfficientNet-Lite0 from the zoo (normalisation inside);
photos: the first ``--images`` foolbox photos with their labels, resized to ``--size``. Every attack is
crafted through the defense (white box) by :func:`nrp.eval.adaptive.evaluate_adaptive` at eps 16/255.

Usage::

    nice -n 19 python benchmarks/adaptive_offline.py --images 4 --size 128 --steps 3 --out benchmarks/results/adaptive.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nrp.defenses import create_defense
from nrp.eval.adaptive import AdaptiveAttack, evaluate_adaptive
from nrp.io import read_image
from nrp.zoo import as_classifier

OFFLINE = Path("/root/.cache/nrp/offline/eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--eot", type=int, default=2)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "adaptive.json")
    args = parser.parse_args()
    torch.set_num_threads(2)

    with open(OFFLINE / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[: args.images]
    x = torch.stack([F.interpolate(read_image(OFFLINE / "foolbox" / r["filename"])[None], size=(args.size, args.size),
                                   mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1) for r in rows])
    y = torch.tensor([int(r["label"]) for r in rows])
    classifier = as_classifier("efficientnet-lite0").eval().requires_grad_(False)
    defense = create_defense("nrp_lite_shipped_dynamic").eval().requires_grad_(False)
    step = 16 / 255 / args.steps * 2.5  # PGD's usual 2.5 eps / steps
    attacks = [
        AdaptiveAttack("pgd", gradient="full", eot=1, steps=args.steps, step_size=step),
        AdaptiveAttack("pgd", gradient="full", eot=args.eot, steps=args.steps, step_size=step),
        AdaptiveAttack("pgd", gradient="identity", eot=1, steps=args.steps, step_size=step),
        AdaptiveAttack("pgd", gradient="full", steps=args.steps, step_size=step, fixed=True),
        AdaptiveAttack("table3", steps=args.steps),
    ]
    started = time.perf_counter()
    results = []

    def report(row) -> None:
        print(f"{row.attack}: clean {row.clean:.0%}, single draw {row.single_draw:.0%}, worst of {row.draws} "
              f"{row.worst_of_n:.0%} ({time.perf_counter() - started:.0f} s)", flush=True)
        results.append(row.__dict__)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out), "step_size": step}, "rows": results},
                                  indent=1))
        tmp.replace(args.out)

    # Table 3 here crafts on the target itself with BPDA (no separately trained substitute purifier ships).
    evaluate_adaptive(attacks, defense, classifier, x, y, 16 / 255, draws=args.draws, seed=0, source=classifier,
                      on_row=report)


if __name__ == "__main__":
    main()
