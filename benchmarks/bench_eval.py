"""The evaluation harness against the bare model calls it makes: one source, three defenses, two targets at 224.

Two random-weight torchvision classifiers (ResNet-18 as source and first target, MobileNet-V3-Large as second
target), JPEG (q=75), median (3x3) and bit-depth (5 bits) defenses plus no defense, ``--images`` generated
224x224 PNG photos. Three timings, side by side in one process:

* ``harness_eval``: ``run_evaluation`` with the clean set and one stored FGSM set already on disk (attack
  generation excluded): PNG decoding, defenses, targets, metrics and the report;
* ``bare_eval``: the same defense and target calls on the same tensors held in memory, in a plain loop;
* ``harness_full``: ``run_evaluation`` from an empty run folder (attack generation included), and
  ``bare_full`` the same FGSM calls plus ``bare_eval``.

The harness overhead is ``harness / bare - 1`` (target <= 10%). Images per second count every image once per
set (clean and FGSM) and (defense, target) pair, as the protocol does.

Usage::

    python benchmarks/bench_eval.py                       # 32 images, about 4 min on 2 idle cores
    python benchmarks/bench_eval.py --images 8 --rounds 1 # quick look
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from machine import add_run_arguments, load_average, start_run, write_json
from nrp.attacks import fgsm
from nrp.defenses import create_defense
from nrp.eval.config import EvalConfig
from nrp.eval.run import run_evaluation
from nrp.zoo import ImageClassifier

TARGET_OVERHEAD = 0.10
DEFAULT_OUT = Path(__file__).parent / "results" / "eval.json"
DEFENSES = [{"name": "none"}, {"name": "jpeg", "quality": 75}, {"name": "median", "window": 3}, {"name": "bit_depth", "bits": 5}]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def models() -> dict[str, torch.nn.Module]:
    """Random-weight classifiers behind the zoo's wrapper (resize/normalise inside), as the harness uses them."""
    torch.manual_seed(0)
    networks = {"resnet18": torchvision.models.resnet18(), "mobilenet_v3_large": torchvision.models.mobilenet_v3_large()}
    return {name: ImageClassifier(network, 224, MEAN, STD, name=name) for name, network in networks.items()}


def write_photos(folder: Path, count: int) -> None:
    """Smooth random colour photos (224x224 PNG) and a labels CSV."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["filename,label"]
    for index in range(count):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((224, 224), Image.BICUBIC).save(folder / f"{index:04d}.png")
        rows.append(f"{index:04d}.png,{index % 1000}")
    (folder.parent / "labels.csv").write_text("\n".join(rows) + "\n")


def config(work: Path, run: str, batch_size: int) -> EvalConfig:
    return EvalConfig(images=str(work / "photos"), labels=str(work / "labels.csv"), image_size=224, out=str(work / run),
                      sources=["resnet18"], attacks=[{"name": "fgsm", "label": "fgsm"}], eps=[16], defenses=DEFENSES,
                      targets=["resnet18", "mobilenet_v3_large"], batch_size=batch_size, grid_images=0, device="cpu")


def bare(images: torch.Tensor, labels: torch.Tensor, bank: dict[str, torch.nn.Module], batch_size: int, attack: bool) -> None:
    """The model calls of the protocol on in-memory tensors, nothing else."""
    defenses = [create_defense(d["name"], **{k: v for k, v in d.items() if k != "name"}) for d in DEFENSES]
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x, y = images[start:start + batch_size], labels[start:start + batch_size]
            with torch.enable_grad():
                adversarial = fgsm(bank["resnet18"], x, y, eps=16 / 255) if attack else x
            for batch in (x, adversarial):
                for defense in defenses:
                    defended = defense(batch).clamp(0, 1)
                    for target in bank.values():
                        target(defended).topk(5, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, DEFAULT_OUT)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    machine = start_run(args)
    bank = models()
    work = Path(tempfile.mkdtemp(prefix="nrp-bench-eval-"))
    try:
        write_photos(work / "photos", args.images)
        images = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255
                              for p in sorted((work / "photos").iterdir())])
        labels = torch.tensor([i % 1000 for i in range(args.images)])
        run_evaluation(config(work, "warm", args.batch_size), bank)  # stores the sets the eval-only timing reuses
        times: dict[str, list[float]] = {key: [] for key in ("harness_eval", "bare_eval", "harness_full", "bare_full")}
        for round_number in range(args.rounds):
            shutil.rmtree(work / "warm" / "predictions")
            shutil.rmtree(work / "warm" / "report")
            start = time.perf_counter()
            run_evaluation(config(work, "warm", args.batch_size), bank)
            times["harness_eval"].append(time.perf_counter() - start)
            start = time.perf_counter()
            bare(images, labels, bank, args.batch_size, attack=False)
            times["bare_eval"].append(time.perf_counter() - start)
            start = time.perf_counter()
            run_evaluation(config(work, f"full{round_number}", args.batch_size), bank)
            times["harness_full"].append(time.perf_counter() - start)
            start = time.perf_counter()
            bare(images, labels, bank, args.batch_size, attack=True)
            times["bare_full"].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work)
    median = {key: statistics.median(values) for key, values in times.items()}
    evaluated = args.images * 2 * len(DEFENSES) * 2
    results = {
        "benchmark": "eval", "machine": machine, "load_average_at_end": load_average(),
        "settings": {"images": args.images, "batch_size": args.batch_size, "rounds": args.rounds, "defenses": DEFENSES,
                     "targets": list(bank), "source": "resnet18", "attack": "fgsm"},
        "seconds": times, "median_seconds": median,
        "images_per_second": {key: evaluated / value for key, value in median.items()},
        "overhead_eval": median["harness_eval"] / median["bare_eval"] - 1,
        "overhead_full": median["harness_full"] / median["bare_full"] - 1,
        "target_overhead": TARGET_OVERHEAD,
    }
    write_json(args.out, results)
    print(f"harness overhead, attack excluded: {results['overhead_eval']:+.1%}  included: {results['overhead_full']:+.1%}"
          f"  (target <= {TARGET_OVERHEAD:.0%})")
    for key, value in results["images_per_second"].items():
        print(f"{key:>13}: {value:6.1f} evaluated images/s")


if __name__ == "__main__":
    main()
