"""CPU time of ``nrp demo``'s stages with the models' weights contiguous and channels-last, side by side.

``nrp demo`` spends its time in three kinds of stage (idle 2-core CPU, 20 foolbox photos: 12 min 28 s before
this measurement's change): crafting SSP (100 steps on a source's features), crafting the iterative transfer
attacks (10 steps through a source or the ensemble), and evaluating each stored set (every defense once, every
target behind it). This runs one of each on the foolbox photos, exactly as the demo computes them (the
demo's models, from its :class:`~nrp.eval.models.ModelBank`; its defenses), once with every model in
PyTorch's default contiguous layout and once channels-last (what the demo uses), alternating the two over
``--rounds`` so machine load affects both alike, and reports the process CPU-seconds of each (user + system,
all threads) and their ratio. Attack steps are cut to ``--ssp-steps`` and ``--steps``: the cost per step is
what is compared. It also checks that both layouts give the same top-1 predictions.

Usage::

    PYTHONPATH=src python benchmarks/bench_demo.py --images ~/.cache/nrp/offline/eval/foolbox
"""

from __future__ import annotations

import argparse
import resource
from collections.abc import Callable
from pathlib import Path

import torch

import nrp.eval.models
import nrp.eval.protocol
from machine import add_run_arguments, start_run, write_json
from nrp.attacks import ssp
from nrp.attacks.registry import get_attack
from nrp.eval.datasets import read_batch
from nrp.eval.models import ModelBank
from nrp.offline.demo import MOBILENET_V2, SSP_LAYERS, TARGETS, demo_config
from nrp.zoo.package_models import mobilenet_v2_weights

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(layout: torch.memory_format, weights: dict[str, str], config) -> tuple[ModelBank, dict[str, torch.nn.Module]]:
    """The demo's models and defenses with their weights in ``layout``."""
    nrp.eval.models.MEMORY_FORMAT = layout
    nrp.eval.protocol.MEMORY_FORMAT = layout
    bank = ModelBank(torch.device("cpu"), weights)
    # The bank builds models on first use, reading the layout then: build them all now, under this one.
    for name in [*TARGETS, "+".join(SSP_LAYERS)]:
        bank.classifier(name)
    for name, layer in SSP_LAYERS.items():
        bank.feature_extractor(name, layer)
    defenses = {c.label: nrp.eval.protocol._build_defense(c.name, c.params, torch.device("cpu"))
                for c in config.defense_components()}
    kernels = [p for module in [*bank.cache.values(), *defenses.values()] for p in module.parameters() if p.dim() == 4]
    assert all(kernel.is_contiguous(memory_format=layout) for kernel in kernels), "a model escaped the layout"
    return bank, defenses


def stages(bank: ModelBank, defenses: dict[str, torch.nn.Module], x: torch.Tensor, ssp_steps: int,
           steps: int) -> dict[str, Callable[[], object]]:
    """One of each kind of stage on the batch ``x``."""
    ensemble = bank.classifier("+".join(SSP_LAYERS))

    def evaluate() -> list[torch.Tensor]:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # R&P and the dynamic NRP draw the same noise in both layouts
            return [bank.classifier(target)(defense(x).clamp(0, 1)).argmax(1)
                    for defense in defenses.values() for target in TARGETS]

    return {
        **{f"ssp {name} {layer}": (lambda name=name, layer=layer: ssp(
            x, bank.feature_extractor(name, layer), eps=16 / 255, steps=ssp_steps,
            generator=torch.Generator().manual_seed(0))) for name, layer in SSP_LAYERS.items()},
        "mi_fgsm ensemble": lambda: get_attack("mi_fgsm")(ensemble, x, None, eps=16 / 255, steps=steps,
                                                          generator=torch.Generator().manual_seed(0)),
        "evaluate (7 defenses x 5 targets)": evaluate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="the foolbox photos (nrp data offline lays them out)")
    parser.add_argument("--count", type=int, default=10, help="photos per batch (the demo's batch size, 10)")
    parser.add_argument("--ssp-steps", type=int, default=5, help="SSP steps per measurement (the demo runs 100)")
    parser.add_argument("--steps", type=int, default=3, help="MI-FGSM steps per measurement (the demo runs 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two layouts")
    add_run_arguments(parser, Path("benchmarks/results/bench_demo.json"))
    args = parser.parse_args()
    results = start_run(args)
    paths = sorted(args.images.iterdir())[: args.count]
    x = read_batch(paths, 224)
    config = demo_config(args.images, args.images, Path("unused"))
    weights = {MOBILENET_V2: str(mobilenet_v2_weights())}
    built = {name: build(layout, weights, config) for name, layout in LAYOUTS.items()}
    runs = {name: stages(*built[name], x, args.ssp_steps, args.steps) for name in LAYOUTS}
    for name in LAYOUTS:  # first calls build lazily and warm up; not timed
        for stage in runs[name].values():
            stage()
    seconds = {name: dict.fromkeys(runs[name], 0.0) for name in LAYOUTS}
    for _ in range(args.rounds):
        for name in LAYOUTS:
            for stage, run in runs[name].items():
                start = cpu_seconds()
                run()
                seconds[name][stage] += (cpu_seconds() - start) / args.rounds
    predictions = {name: runs[name]["evaluate (7 defenses x 5 targets)"]() for name in LAYOUTS}
    same = sum(int((a == b).sum()) for a, b in zip(*predictions.values()))
    rows = [{"stage": stage, **{f"{name}_cpu_s": round(seconds[name][stage], 3) for name in LAYOUTS},
             "ratio": round(seconds["channels_last"][stage] / seconds["contiguous"][stage], 3)} for stage in seconds["contiguous"]]
    results.update(images=len(paths), ssp_steps=args.ssp_steps, steps=args.steps, rounds=args.rounds, rows=rows,
                   same_top1=f"{same} of {sum(p.numel() for p in predictions['contiguous'])}")
    write_json(args.out, results)
    for row in rows:
        print(f"{row['stage']:40s} contiguous {row['contiguous_cpu_s']:7.2f} s  channels-last "
              f"{row['channels_last_cpu_s']:7.2f} s  ratio {row['ratio']:.2f}")
    print(f"same top-1 in {results['same_top1']} (defense, target, photo) cases; load {results.get('load_average')}")


if __name__ == "__main__":
    main()
