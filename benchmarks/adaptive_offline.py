"""The adaptive table of the shipped NRP-Lite on the offline benchmark (docs/adaptive.md).

Defense: the shipped NRP-Lite purifier (``nrp_lite_shipped_dynamic``: the authors' dynamic noise, std 0.05
projected to 16/255, then the purifier, trained on EfficientNet-Lite0 ``_blocks.4`` features); defended
target: ``--target`` from the zoo (normalisation inside); photos: the first ``--images`` foolbox photos of the
offline benchmark with their labels, resized to ``--size`` x ``--size`` (bilinear, antialiased). Every attack
is crafted through the defense by :func:`nrp.eval.adaptive.evaluate_adaptive` at eps 16/255 (the rows are the
attack entries ``nrp eval`` takes with an ``adaptive`` mapping):

* AutoAttack, standard and rand versions (torchattacks, through :func:`nrp.attacks.autoattack`), full gradient;
* PGD through the dynamic defense, full gradient and BPDA (identity), one draw and ``--eot`` EOT draws;
* PGD against the defense with its noise fixed (a deterministic defense, reported apart);
* the paper's Table 3 protocol: DIM-TI on the attacker's ``--source`` classifier through BPDA with the
  attacker's own ``--substitute`` purifier (trained on other photos with another feature network), and,
  beside it, the same with the identity as the substitute.

Usage::

    OMP_NUM_THREADS=1 nice -n 12 python benchmarks/adaptive_offline.py --substitute runs/substitute/purifier.safetensors
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from machine import load_average, machine_info
from nrp.atomic import atomic_path
from nrp.defenses import create_defense
from nrp.eval.adaptive import Adaptive, AdaptiveAttack, defended_accuracy, evaluate_adaptive
from nrp.io import read_image
from nrp.purifiers import shipped_weights
from nrp.zoo import as_classifier

OFFLINE = Path.home() / ".cache" / "nrp" / "offline" / "eval"
EPS = 16 / 255


def load_photos(count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` foolbox photos resized to ``size`` x ``size``, and their labels."""
    with open(OFFLINE / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    x = torch.stack([F.interpolate(read_image(OFFLINE / "foolbox" / r["filename"])[None], size=(size, size),
                                   mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1) for r in rows])
    return x, torch.tensor([int(r["label"]) for r in rows])


def attacks(steps: int, eot: int, queries: int, draws: int) -> list[AdaptiveAttack]:
    """The rows, in the order of the table (Table 3's two rows last: crafted on the source). Their ``source`` and
    ``substitute`` name the script's ``--source`` model and ``--substitute`` purifier (``main``'s ``models``)."""
    pgd = {"steps": steps, "step_size": 2.5 * EPS / steps}  # Madry et al.'s 2.5 eps / steps
    dim_ti = {"steps": steps, "step_size": EPS / steps}

    def row(name: str, params: dict, label: str, **settings) -> AdaptiveAttack:
        return AdaptiveAttack(name, params, Adaptive(draws=draws, **settings), label)

    return [
        row("autoattack", {"version": "standard", "steps": steps, "queries": queries}, "autoattack standard"),
        row("autoattack", {"version": "rand", "steps": steps}, "autoattack rand"),
        row("pgd", pgd, "pgd full"),
        row("pgd", pgd, f"pgd full eot{eot}", eot=eot),
        row("pgd", pgd, "pgd identity", gradient="identity"),
        row("pgd", pgd, f"pgd identity eot{eot}", gradient="identity", eot=eot),
        row("pgd", pgd, "pgd full fixed noise", fixed=True),
        row("dim_ti_fgsm", dim_ti, "table3 (DIM-TI, BPDA with the substitute)", gradient="substitute",
            substitute="substitute", source="source"),
        row("dim_ti_fgsm", dim_ti, "table3 (DIM-TI, BPDA with the identity)", gradient="identity", source="source"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--eot", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200, help="Square's budget in AutoAttack standard")
    parser.add_argument("--draws", type=int, default=8, help="N of the worst-of-N figure")
    parser.add_argument("--batch-size", type=int, default=2,
                        help="images attacked at once (memory grows with it and --eot)")
    parser.add_argument("--target", default="efficientnet-lite0")
    parser.add_argument("--source", default="efficientnet-lite1", help="Table 3's source classifier")
    parser.add_argument("--substitute", type=Path, required=True, help="Table 3's substitute purifier weights")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "adaptive.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # AutoAttack's rand version and the dynamic noise draw from the global generator

    x, y = load_photos(args.images, args.size)
    classifier = as_classifier(args.target).eval().requires_grad_(False)
    source = as_classifier(args.source).eval().requires_grad_(False)
    defense = create_defense("nrp_lite_shipped_dynamic").eval().requires_grad_(False)
    substitute = create_defense("nrp", weights=str(args.substitute)).eval().requires_grad_(False)
    started = time.perf_counter()
    with torch.no_grad():
        undefended = (classifier(x).argmax(1) == y).float().mean().item()
    clean_single, clean_worst = defended_accuracy(defense, classifier, x, y, args.draws)
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                     "eps": EPS, "pgd_step_size": 2.5 * EPS / args.steps, "dim_ti_step_size": EPS / args.steps,
                     "defense": "nrp_lite_shipped_dynamic", "defense_weights": shipped_weights().name,
                     "defense_weights_sha256": hashlib.sha256(shipped_weights().read_bytes()).hexdigest(),
                     "substitute_sha256": hashlib.sha256(args.substitute.read_bytes()).hexdigest()},
        "machine": machine_info(),
        "clean": {"undefended": undefended, "single_draw": clean_single, "worst_of_n": clean_worst},
        "rows": [],
    }

    def report(attack: AdaptiveAttack, row: dict) -> None:
        row = {"attack": attack.label, **row, "name": attack.name, "params": attack.params,
               "adaptive": {k: v for k, v in vars(attack.settings).items()},
               "seconds_since_start": round(time.perf_counter() - started, 1)}
        print(f"{row['attack']}: single draw {row['single_draw']:.0%}, worst of {row['draws']} {row['worst_of_n']:.0%} "
              f"({row['seconds_since_start']:.0f} s)", flush=True)
        record["rows"].append(row)
        record["wall_seconds"] = row["seconds_since_start"]
        record["machine"]["load_average_now"] = load_average()
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")

    print(f"clean: undefended {undefended:.0%}, defended single draw {clean_single:.0%}, worst of {args.draws} "
          f"{clean_worst:.0%}", flush=True)
    models = {"source": source, "substitute": substitute}
    for attack in attacks(args.steps, args.eot, args.queries, args.draws):
        settings = attack.settings
        report(attack, evaluate_adaptive(attack, defense, classifier, x, y, EPS, seed=0, source=models.get(settings.source),
                                         substitute=models.get(settings.substitute), batch_size=args.batch_size))


if __name__ == "__main__":
    main()
