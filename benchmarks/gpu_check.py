"""One command for a GPU: the CUDA tests, a training iteration against its parts' floors, purification FLOP/s.

Within about 8 minutes on one GPU it

1. runs the CUDA tests (``pytest tests -k cuda``);
2. times a training iteration (Algorithm 2) of NRP and NRP_resG at the paper's settings (batch 16, crop 128,
   SSP 10 steps on VGG16 ``features[:16]``, critic width 64; random weights: only the cost matters), in the
   precision ``auto`` picks, against the floors of its parts measured in the same rounds: SSP (10 bare
   forward + input-gradient backward passes of the extractor), the purifier's forward + backward, the
   extractor's forward + backward on the purified batch, and the critic's forward + backward on real +
   purified (twice: once in each half-step). Target: iteration <= 1.3 x the sum of the floors;
3. times purification of 299x299 images by both networks in bf16 and fp32 (``inference_mode``), counting the
   FLOPs of one forward with ``torch.utils.flop_counter`` and comparing the achieved rate with the GPU's dense
   bf16 rate (from a table of known GPUs, or ``--peak-tflops``). Target: NRP >= 30 % of it in bf16;
4. writes one JSON file.

``--quick`` runs the same code at tiny sizes (a few seconds on a CPU), which the test suite uses.

Usage::

    python benchmarks/gpu_check.py                              # -> benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --quick --out /tmp/check.json  # tiny sizes, any device
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from machine import machine_info, write_json
from nrp.purifiers import create_network
from nrp.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).parent / "results" / "gpu_check.json"
TARGET_ITERATION_RATIO = 1.3
TARGET_PEAK_SHARE = 0.30
# Dense (no sparsity) bfloat16 tensor-core rates from NVIDIA's data sheets, TFLOP/s; matched on the device name.
DENSE_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 756.0, "A100": 312.0, "L40S": 362.0,
                     "L4": 121.0, "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0}
FULL = {"batch": 16, "crop": 128, "ssp_steps": 10, "critic_width": 64, "features": 16, "layer": "conv3_3", "purify_batch": 8,
        "purify_size": 299, "rounds": 5}
QUICK = {"batch": 2, "crop": 32, "ssp_steps": 1, "critic_width": 4, "features": 4, "layer": "conv1_2", "purify_batch": 1,
         "purify_size": 32, "rounds": 1}
NETWORKS = {"nrp": {}, "nrp_resg": {}}
QUICK_NETWORKS = {"nrp": {"width": 8, "blocks": 1, "growth": 4}, "nrp_resg": {"width": 8, "blocks": 1}}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of ``function`` takes, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def run_cuda_tests(quick: bool) -> dict[str, Any]:
    """``pytest tests -k cuda``: the tests that need a GPU (skipped without one)."""
    selection = ["tests/training/test_cuda.py"] if quick else ["tests"]
    command = [sys.executable, "-m", "pytest", *selection, "-k", "cuda", "-q", "-p", "no:cacheprovider", "--no-header"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    return {"command": " ".join(command[2:]), "returncode": result.returncode, "summary": lines[-1] if lines else "",
            "seconds": time.perf_counter() - started}


def training_parts(trainer: Trainer, clean: torch.Tensor) -> dict[str, float]:
    """One iteration split into its steps, and the floors of its parts, timed side by side."""
    device, steps = trainer.device, trainer.config.ssp_steps
    extractor, purifier, critic = trainer.feature_extractor, trainer.purifier, trainer.critic
    times: dict[str, float] = {}

    def ssp_floor() -> None:
        with trainer.precision.attack_autocast():
            for _ in range(steps):
                x = clean.detach().requires_grad_(True)
                torch.autograd.grad(extractor(x).float().sum(), x)

    def purifier_floor() -> None:
        with trainer.precision.autocast():
            output = purifier(clean)
        output.float().sum().backward()

    def features_floor() -> None:
        x = clean.detach().requires_grad_(True)
        with trainer.precision.autocast():
            features = extractor(x)
        torch.autograd.grad(features.float().sum(), x)

    def critic_floor() -> None:
        with trainer.precision.autocast():
            logits = critic(torch.cat((clean, clean)))
        logits.float().sum().backward()

    times["floor_ssp"] = timed(ssp_floor, device)
    times["floor_purifier_forward_backward"] = timed(purifier_floor, device)
    times["floor_features_forward_backward"] = timed(features_floor, device)
    times["floor_critic_forward_backward"] = timed(critic_floor, device)
    purifier.zero_grad(set_to_none=True)
    critic.zero_grad(set_to_none=True)
    state: dict[str, torch.Tensor] = {}
    times["ssp"] = timed(lambda: state.update(perturbed=trainer.perturb_batch(clean, 0)), device)
    times["purifier_step"] = timed(lambda: state.update(purified=trainer.purifier_step(clean, state["perturbed"])[0]), device)
    times["critic_step"] = timed(lambda: trainer.critic_step(clean, state["purified"]), device)
    times["iteration"] = times["ssp"] + times["purifier_step"] + times["critic_step"]
    times["floors"] = (times["floor_ssp"] + times["floor_purifier_forward_backward"] + times["floor_features_forward_backward"]
                       + 2 * times["floor_critic_forward_backward"])
    return times


def time_training(network: str, arguments: dict[str, int], sizes: dict[str, int], device: torch.device, folder: Path) -> dict[str, Any]:
    weights = folder / f"vgg16_features_{sizes['features']}.pth"
    if not weights.exists():
        features = torchvision.models.vgg16(weights=None).features[: sizes["features"]]
        torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, weights)
    config = TrainConfig(
        data=[str(folder / "photos")], out=str(folder / f"run_{network}"), purifier=network, batch_size=sizes["batch"],
        crop=sizes["crop"], resize=sizes["crop"], ssp_steps=sizes["ssp_steps"], critic_width=sizes["critic_width"],
        layer=sizes["layer"], backbone_weights=str(weights), workers=0, device=str(device), **arguments,
    )
    trainer = Trainer(config)
    clean = torch.rand(sizes["batch"], 3, sizes["crop"], sizes["crop"], device=device)
    training_parts(trainer, clean)  # warm-up: kernels chosen, memory cached
    rounds = [training_parts(trainer, clean) for _ in range(sizes["rounds"])]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = median["iteration"] / median["floors"]
    return {"precision": trainer.precision.name, "median_seconds": median, "iteration_over_floors": ratio,
            "target": TARGET_ITERATION_RATIO, "met": ratio <= TARGET_ITERATION_RATIO}


def peak_bf16_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((rate for key, rate in DENSE_BF16_TFLOPS.items() if key in name), None)


def time_purification(network: str, arguments: dict[str, int], sizes: dict[str, int], device: torch.device, peak: float | None) -> dict[str, Any]:
    purifier = create_network(network, **arguments).to(device).eval()
    images = torch.rand(sizes["purify_batch"], 3, sizes["purify_size"], sizes["purify_size"], device=device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        purifier(images)
    flops = counter.get_total_flops()
    results: dict[str, Any] = {"batch": sizes["purify_batch"], "size": sizes["purify_size"], "flops_per_batch": flops}
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        def run() -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                purifier(images)

        run()  # warm-up
        seconds = statistics.median(timed(run, device) for _ in range(sizes["rounds"]))
        rate = flops / seconds / 1e12
        results[precision] = {"seconds_per_batch": seconds, "images_per_second": sizes["purify_batch"] / seconds, "tflops": rate,
                              "share_of_dense_bf16_peak": rate / peak if peak else None}
    if peak:
        results["target_share_bf16"], results["met"] = TARGET_PEAK_SHARE, results["bf16"]["share_of_dense_bf16_peak"] >= TARGET_PEAK_SHARE
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test on any device")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 rate, when it is not in the table")
    parser.add_argument("--skip-tests", action="store_true", help="leave out step 1")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sizes, networks = (QUICK, QUICK_NETWORKS) if args.quick else (FULL, NETWORKS)
    peak = peak_bf16_tflops(device, args.peak_tflops)
    started = time.perf_counter()
    results: dict[str, Any] = {"settings": {**sizes, "device": str(device), "quick": args.quick, "dense_bf16_tflops": peak}}
    if device.type == "cuda":
        results["settings"]["gpu"] = torch.cuda.get_device_name(device)
        results["settings"]["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    if not args.skip_tests:
        results["cuda_tests"] = run_cuda_tests(args.quick)
        print(f"CUDA tests: {results['cuda_tests']['summary']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "photos").mkdir()
        pixels = np.random.default_rng(0).integers(0, 256, (sizes["crop"], sizes["crop"], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "photos" / "0.png")
        results["training"] = {name: time_training(name, arguments, sizes, device, folder) for name, arguments in networks.items()}
    for name, measured in results["training"].items():
        seconds = measured["median_seconds"]
        print(f"train {name} ({measured['precision']}): iteration {seconds['iteration'] * 1e3:.1f} ms = {measured['iteration_over_floors']:.2f} x "
              f"its floors {seconds['floors'] * 1e3:.1f} ms (target <= {TARGET_ITERATION_RATIO})", flush=True)
    results["purification"] = {name: time_purification(name, arguments, sizes, device, peak) for name, arguments in networks.items()}
    for name, measured in results["purification"].items():
        share = measured["bf16"]["share_of_dense_bf16_peak"]
        print(f"purify {name} {measured['size']}px: fp32 {measured['fp32']['images_per_second']:.1f} img/s, bf16 "
              f"{measured['bf16']['images_per_second']:.1f} img/s = {measured['bf16']['tflops']:.1f} TFLOP/s"
              + (f" ({100 * share:.0f}% of dense bf16 peak; target >= {100 * TARGET_PEAK_SHARE:.0f}%)" if share else ""), flush=True)
    results["machine"] = machine_info()
    results["seconds"] = time.perf_counter() - started
    write_json(args.out, results)
    print(f"wrote {args.out} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
