"""A hostile-input corpus (issue 18): every case through the command line, one clear line, no traceback.

Refused cases: a non-zero exit code (2 for bad arguments, 1 for runtime failures, as the README states), no
traceback, exactly one ``nrp: error:`` line naming the offending value, and no half-written file left behind
(no output image, no ``*.tmp``). Skipped cases: the bad input is named in a warning, every other input is
written, and the exit code is 3. Most run in-process through ``nrp.cli.main.main``; the FIFO and the
long-name cases also run as real subprocesses.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from nrp.checkpoints import Checkpoint, write_checkpoint
from nrp.cli import exit_codes
from nrp.cli.main import main

SRC = Path(__file__).resolve().parents[2] / "src"
HUGE_SEED = "99999999999999999999999"


@dataclass
class Context:
    """The files a case may point at, and where it may create more."""

    tmp: Path
    photos: Path
    purifier: Path
    vgg: Path
    train_config: Path

    def out(self) -> str:
        return str(self.tmp / "out")

    def write(self, name: str, content: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)


def purify(ctx: Context, *extra: str) -> list[str]:
    return ["purify", str(ctx.photos), "--out", ctx.out(), "--weights", str(ctx.purifier), *extra]


def ssp(ctx: Context, *extra: str) -> list[str]:
    return ["attack", "ssp", str(ctx.photos), "--out", ctx.out(), "--backbone-weights", str(ctx.vgg), "--steps", "1", *extra]


def train(ctx: Context, *extra: str) -> list[str]:
    return ["train", "--config", str(ctx.train_config), "--out", ctx.out(), *extra]


def weights_with(ctx: Context, arguments: dict, change: Callable[[dict], None] = lambda state: None) -> str:
    from nrp.purifiers import NRP

    state = {key: value.clone() for key, value in NRP(width=8, blocks=1, growth=4).state_dict().items()}
    change(state)
    path = ctx.tmp / "hostile.safetensors"
    write_checkpoint(Checkpoint(state, "nrp", arguments), path)
    return str(path)


def damaged_pth(ctx: Context) -> str:
    from nrp.purifiers import NRP, save_network

    path = ctx.tmp / "damaged.pth"
    save_network(NRP(width=8, blocks=1, growth=4), path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200] = bytes(b ^ 0xFF for b in data[middle:middle + 200])
    path.write_bytes(bytes(data))
    return str(path)


def perturbation(ctx: Context, tensor: torch.Tensor) -> str:
    path = ctx.tmp / "delta.safetensors"
    save_file({"perturbation": tensor}, str(path))
    return str(path)


def fff(ctx: Context, file: str) -> list[str]:
    return ["attack", "fff", str(ctx.photos), "--out", ctx.out(), "--perturbation", file]


def labels_file(ctx: Context, content: bytes) -> list[str]:
    return ["attack", "fgsm", str(ctx.photos), "--out", ctx.out(), "--model", "squeezenet1_1", "--model-weights",
            "unused.pth", "--labels", ctx.write("labels.csv", content)]


def eval_file(ctx: Context, content: bytes) -> list[str]:
    return ["eval", ctx.write("experiment.yaml", content)]


def experiment(ctx: Context, extra: str, *flags: str) -> list[str]:
    """``nrp eval`` on a valid experiment file (real photos folder, zoo model names) plus ``extra`` lines."""
    base = f"images: {ctx.photos}\nout: {ctx.out()}\nsources: [resnet18]\ntargets: [resnet18]\n"
    return ["eval", ctx.write("experiment.yaml", (base + extra + "\n").encode()), *flags]


def existing_file(ctx: Context) -> str:
    return ctx.write("taken", b"a file")


# (id, argv from the context, expected exit code, text the one error line must hold)
REFUSED: list[tuple[str, Callable[[Context], list[str]], int, str]] = [
    # numbers
    ("purify seed overflow", lambda c: purify(c, "--seed", HUGE_SEED), 2, f"argument --seed: expected an integer in [0, 9223372036854775807], got '{HUGE_SEED}'"),
    ("ssp seed overflow", lambda c: ssp(c, "--seed", HUGE_SEED), 2, "argument --seed: expected an integer in [0, 9223372036854775807]"),
    ("train seed overflow", lambda c: train(c, "--seed", HUGE_SEED), 2, f"--seed must be an integer in [0, 9223372036854775807], got {HUGE_SEED}"),
    ("negative seed", lambda c: purify(c, "--seed", "-1"), 2, "argument --seed: expected an integer in [0, 9223372036854775807], got '-1'"),
    ("batch size 0", lambda c: purify(c, "--batch-size", "0"), 2, "argument --batch-size: expected an integer >= 1, got '0'"),
    ("batch size text", lambda c: purify(c, "--batch-size", "four"), 2, "argument --batch-size: expected an integer >= 1, got 'four'"),
    ("negative tile", lambda c: purify(c, "--tile", "-1"), 2, "expected an integer >= 0, got '-1'"),
    ("ssp step size nan", lambda c: ssp(c, "--step-size", "nan"), 2, "argument --step-size: expected a finite number > 0, got 'nan'"),
    ("ssp eps inf", lambda c: ssp(c, "--eps", "inf"), 2, "argument --eps: expected a finite number in [0, 255], got 'inf'"),
    ("defense sigma nan", lambda c: ["defend", "gaussian", str(c.photos), "--out", c.out(), "--sigma", "nan"], 2, "argument --sigma: expected a finite number, got 'nan'"),
    *((f"defense {name} {flag} {value}", lambda c, n=name, f=flag, v=value: ["defend", n, str(c.photos), "--out", c.out(), f, v], 2, message)
      for name, flag, value, message in [
          ("median", "--window", "4", "argument --window: window must be an odd integer >= 1, got 4"),
          ("jpeg", "--quality", "0", "argument --quality: quality must be an integer in 1..100, got 0"),
          ("bit_depth", "--bits", "9", "argument --bits: bits must be an integer in 1..8, got 9"),
          ("gaussian", "--sigma", "0", "argument --sigma: sigma must be a number in (0.0, inf], got 0.0"),
          ("tvm", "--norm", "3", "argument --norm: norm must be 1 or 2, got 3"),
          ("tvm", "--keep-prob", "2", "argument --keep-prob: keep_prob must be a number in (0.0, 1.0], got 2.0"),
          ("nrp_lite_shipped", "--tile", "0", "argument --tile-size: tile_size must be an integer in >= 1, got 0"),
          ("nrp_lite_shipped_dynamic", "--noise-eps", "300", "argument --noise-eps: noise_eps must be a number in [0.0, 1.0]"),
      ]),
    ("defense nrp without weights", lambda c: ["defend", "nrp", str(c.photos), "--out", c.out()], 2, "argument --weights: the nrp defense needs a purifier weights file"),
    ("fgsm eps nan", lambda c: labels_file(c, b"image,label\n")[:-2] + ["--eps", "nan"], 2, "argument --eps: expected a finite number, got 'nan'"),
    ("fff size 8", lambda c: ["attack", "fff", str(c.photos), "--out", c.out(), "--size", "8"], 2, "argument --size: expected an integer >= 32, got '8'"),
    ("eval eps nan", lambda c: ["eval", "--images", str(c.photos), "--eps", "8,nan"], 2, "argument --eps: expected a finite number in [0, 255], got 'nan'"),
    ("eval seed overflow", lambda c: ["eval", "--images", str(c.photos), "--seed", HUGE_SEED], 2, "argument --seed"),
    ("train lr -1", lambda c: train(c, "--lr", "-1"), 2, "--lr must be a finite number > 0, got -1.0"),
    ("train lr nan", lambda c: train(c, "--lr", "nan"), 2, "--lr must be a finite number > 0, got nan"),
    ("train width 0", lambda c: train(c, "--width", "0"), 2, "--width must be an integer >= 1, got 0"),
    ("train width -1", lambda c: train(c, "--width", "-1"), 2, "--width must be an integer >= 1, got -1"),
    ("train blocks 0", lambda c: train(c, "--blocks", "0"), 2, "--blocks must be an integer >= 1, got 0"),
    ("train crop 16", lambda c: train(c, "--crop", "16"), 2, "--crop must be at least 32 (the critic halves it five times), got 16"),
    ("train ssp step nan", lambda c: train(c, "--ssp-step-size", "nan"), 2, "--ssp-step-size must be a finite number > 0, got nan"),
    ("train betas nan", lambda c: train(c, "--betas", "nan,0.9"), 2, "--betas must be a finite number, got nan"),
    ("train workers -1", lambda c: train(c, "--workers", "-1"), 2, "--workers must be an integer >= 0, got -1"),
    ("train config lr text", lambda c: ["train", "--config", c.write("t.yaml", c.train_config.read_bytes() + b"lr: abc\n"), "--out", c.out()], 2, "t.yaml: lr must be a finite number > 0, got 'abc'"),
    ("train config width float", lambda c: ["train", "--config", c.write("t.yaml", c.train_config.read_bytes().replace(b"\nwidth: 4\n", b"\nwidth: 4.5\n")), "--out", c.out()], 2, "t.yaml: width must be an integer >= 1, got 4.5"),
    # output paths
    ("out in /proc", lambda c: purify(c)[:3] + ["/proc/nrp-x"] + purify(c)[4:], 1, "--out /proc/nrp-x cannot be written"),
    ("out in /sys", lambda c: purify(c)[:3] + ["/sys/nrp-x"] + purify(c)[4:], 1, "--out /sys/nrp-x cannot be written"),
    ("out is a file", lambda c: purify(c)[:3] + [existing_file(c)] + purify(c)[4:], 1, "is an existing file, not a folder"),
    ("out under a file", lambda c: purify(c)[:3] + [existing_file(c) + "/sub"] + purify(c)[4:], 1, "is an existing file, not a folder"),
    ("train out in /proc", lambda c: ["train", "--config", str(c.train_config), "--out", "/proc/nrp-run"], 1, "--out /proc/nrp-run cannot be written"),
    ("train checkpoints folder is a file", lambda c: train(c) if (Path(c.out()).mkdir() or (Path(c.out()) / "checkpoints").write_text("x")) else [], 1, "checkpoints is an existing file, not a folder"),
    ("ssp out is a file", lambda c: ssp(c)[:4] + [existing_file(c)] + ssp(c)[5:], 1, "is an existing file, not a folder"),
    # weights files
    ("negative width in weights", lambda c: purify(c)[:5] + [weights_with(c, {"width": -8, "blocks": 1, "growth": 4})], 1, "argument width of 'nrp' must be an integer in [1, 4096], got -8"),
    ("fractional width in weights", lambda c: purify(c)[:5] + [weights_with(c, {"width": 7.5, "blocks": 1, "growth": 4})], 1, "got 7.5"),
    ("enormous blocks in weights", lambda c: purify(c)[:5] + [weights_with(c, {"width": 8, "blocks": 100000, "growth": 4})], 1, "must be an integer in [1, 4096], got 100000"),
    ("declared blocks differ", lambda c: purify(c)[:5] + [weights_with(c, {"width": 8, "blocks": 3000, "growth": 4})], 1, "declares blocks=3000 for 'nrp', but its tensors are of blocks=1"),
    ("infinite bias", lambda c: purify(c)[:5] + [weights_with(c, {"width": 8, "blocks": 1, "growth": 4}, lambda s: s["conv_first.bias"].fill_(float("inf")))], 1, "tensor conv_first.bias holds 8 non-finite value(s)"),
    ("nan weights", lambda c: purify(c)[:5] + [weights_with(c, {"width": 8, "blocks": 1, "growth": 4}, lambda s: s["trunk_conv.weight"].fill_(float("nan")))], 1, "tensor trunk_conv.weight holds"),
    ("damaged pth", lambda c: purify(c)[:5] + [damaged_pth(c)], 1, "damaged.pth is damaged"),
    ("pickle with code", lambda c: purify(c)[:5] + [c.write("evil.pth", pickle.dumps(os.system))], 1, "is not a readable PyTorch checkpoint"),
    # devices
    ("device meta", lambda c: purify(c, "--device", "meta"), 1, "device 'meta' cannot run nrp"),
    ("device mps", lambda c: purify(c, "--device", "mps"), 1, "device 'mps' requested but Apple's MPS is not available"),
    ("device cuda:7", lambda c: purify(c, "--device", "cuda:7"), 1, "device 'cuda:7' requested"),
    # label files
    ("labels short row", lambda c: labels_file(c, b"image,label\na.png,1\nb.png\n"), 1, "labels.csv, line 3: 1 field(s), expected 2 (image, label)"),
    ("labels latin-1", lambda c: labels_file(c, "image,label\ncaf\u00e9.png,1\n".encode("latin-1")), 1, "is not UTF-8 text (byte 0xe9 at offset 15); save it as UTF-8"),
    ("labels duplicate", lambda c: labels_file(c, b"image,label\na.png,1\na.jpg,2\n"), 1, "lines 2 (a.png) and 3 (a.jpg) both label image 'a'"),
    ("labels not integer", lambda c: labels_file(c, b"image,label\na.png,cat\n"), 1, "line 2: class 'cat' is not an integer"),
    # FFF perturbation files
    ("fff pickle", lambda c: fff(c, c.write("delta.safetensors", pickle.dumps({"perturbation": [1, 2]}))), 1, "is not a readable .safetensors perturbation"),
    ("fff truncated", lambda c: fff(c, c.write("cut.safetensors", Path(perturbation(c, torch.rand(3, 8, 8))).read_bytes()[:100])), 1, "is not a readable .safetensors perturbation"),
    ("fff 1-D", lambda c: fff(c, perturbation(c, torch.rand(12))), 1, "the perturbation must be a float tensor (3, H, W), got torch.float32 (12,)"),
    ("fff int64", lambda c: fff(c, perturbation(c, torch.ones(3, 8, 8, dtype=torch.int64))), 1, "got torch.int64 (3, 8, 8)"),
    ("fff nan", lambda c: fff(c, perturbation(c, torch.full((3, 8, 8), float("nan")))), 1, "the perturbation holds NaN or infinite values"),
    # experiment and config files
    ("eval binary file", lambda c: eval_file(c, bytes(range(256))), 2, "is not UTF-8 text (byte 0x80 at offset 128)"),
    ("eval integer key", lambda c: eval_file(c, b"images: x\n5: 3\n"), 2, "key 5 is not a name"),
    ("eval not a mapping", lambda c: eval_file(c, b"- a\n- b\n"), 2, "must hold a mapping of keys to values"),
    ("eval bad yaml", lambda c: eval_file(c, b"images: [x\n"), 2, "cannot read config file"),
    ("eval missing file", lambda c: ["eval", str(c.tmp / "nowhere.yaml")], 2, "config file not found"),
    # experiment files: the schema (every name, parameter and path before any work; exit code 2)
    ("eval eps text", lambda c: experiment(c, "eps: abc"), 2, "experiment.yaml: eps[0]: expected a finite number in [0, 255], got 'abc'"),
    ("eval eps 300", lambda c: experiment(c, "eps: [8, 300]"), 2, "experiment.yaml: eps[1]: expected a finite number in [0, 255], got 300"),
    ("eval eps nan in the file", lambda c: experiment(c, "eps: .nan"), 2, "eps[0]: expected a finite number in [0, 255], got nan"),
    ("eval attacks 5", lambda c: experiment(c, "attacks: 5"), 2, "attacks: expected a list, each an attack name or a mapping"),
    ("eval targets 5", lambda c: experiment(c, "targets: 5"), 2, "targets: expected a non-empty list, each a model name"),
    ("eval targets empty", lambda c: experiment(c, "targets: []"), 2, "targets: expected a non-empty list, each a model name (models joined by '+': an ensemble), got an empty list"),
    ("eval batch size text", lambda c: experiment(c, 'batch_size: "8"'), 2, "experiment.yaml: batch_size: expected an integer >= 1, got '8'"),
    ("eval float image size", lambda c: experiment(c, "image_size: 22.5"), 2, "image_size: expected an integer in [1, 8192], got 22.5"),
    ("eval huge image size", lambda c: experiment(c, "image_size: 100000000"), 2, "image_size: expected an integer in [1, 8192], got 100000000"),
    ("eval bool seed", lambda c: experiment(c, "seed: true"), 2, "seed: expected an integer in [0, 9223372036854775807], got True"),
    ("eval huge seed", lambda c: experiment(c, f"seed: {HUGE_SEED}"), 2, f"seed: expected an integer in [0, 9223372036854775807], got {HUGE_SEED}"),
    ("eval unknown key", lambda c: experiment(c, "epss: [8]"), 2, "experiment.yaml: epss: unknown key; known: images, labels, label_offset"),
    ("eval dashed key", lambda c: experiment(c, "batch-size: 0"), 2, "batch_size: expected an integer >= 1, got 0"),
    ("eval unknown attack", lambda c: experiment(c, "attacks: [fgsn]"), 2, "attacks[0]: unknown attack 'fgsn'; known: admix, apgd, autoattack"),
    ("eval unknown attack parameter", lambda c: experiment(c, "attacks: [{name: fgsm, steps: 10}]"), 2, "attacks[0].steps: attack 'fgsm' takes no parameter 'steps'; accepted: label, target"),
    ("eval attack steps text", lambda c: experiment(c, "attacks: [{name: i_fgsm, steps: abc}]"), 2, "attacks[0].steps: expected an integer, got 'abc'"),
    ("eval attack steps 0", lambda c: experiment(c, "attacks: [{name: i_fgsm, steps: 0}]"), 2, "attacks[0].steps: steps must be an integer >= 1, got 0"),
    ("eval attack even ti kernel", lambda c: experiment(c, "attacks: [{name: ti_fgsm, ti_kernel: 4}]"), 2, "attacks[0].ti_kernel: ti_kernel must be an odd integer >= 1"),
    ("eval attack step nan", lambda c: experiment(c, "attacks: [{name: ssp, step_size: .nan}]"), 2, "attacks[0].step_size: expected a finite number, got nan"),
    ("eval attack eps parameter", lambda c: experiment(c, "attacks: [{name: pgd, eps: 8}]"), 2, "attacks[0].eps: attack 'pgd' takes no parameter 'eps'"),
    ("eval attack without name", lambda c: experiment(c, "attacks: [{steps: 3}]"), 2, "attacks[0]: missing 'name' (the attack: admix"),
    ("eval attack target mode", lambda c: experiment(c, "attacks: [{name: fgsm, target: least_likely}]"), 2, "attacks[0].target: unknown target mode 'least_likely'; known: random, dataset"),
    ("eval ssp distance", lambda c: experiment(c, "attacks: [{name: ssp, distance: l7}]"), 2, "attacks[0].distance: unknown distance 'l7'; known:"),
    ("eval ssp backbone", lambda c: experiment(c, "attacks: [{name: ssp, backbone: vgg61}]"), 2, "attacks[0].backbone: unknown model 'vgg61'; known:"),
    ("eval cda without weights", lambda c: experiment(c, "attacks: [cda]"), 2, "attacks[0]: attack 'cda' needs 'weights'"),
    ("eval precomputed folder missing", lambda c: experiment(c, "attacks: [{name: precomputed, folder: 'gone/{eps}', label: P}]"), 2, "attacks[0].folder: folder 'gone/16' does not exist"),
    ("eval precomputed unlabelled", lambda c: experiment(c, f"attacks: [{{name: precomputed, folder: {c.photos}}}]"), 2, "cannot name a folder: labels must be non-empty, not '.' or '..', and hold no '/' or '\\'; give it a 'label'"),
    ("eval attack label", lambda c: experiment(c, "attacks: [{name: fgsm, label: ..}]"), 2, "attacks[0].label: attack label '..' cannot name a folder"),
    ("eval repeated attack labels", lambda c: experiment(c, "attacks: [fgsm, fgsm]"), 2, "attacks: attack labels must be unique"),
    ("eval unknown defense", lambda c: experiment(c, "defenses: [jpg]"), 2, "defenses[0]: unknown defense 'jpg'; known: bit_depth"),
    ("eval unknown defense parameter", lambda c: experiment(c, "defenses: [{name: jpeg, qualty: 50}]"), 2, "defenses[0].qualty: defense 'jpeg' takes no parameter 'qualty'; accepted: label, quality, subsampling"),
    ("eval defense parameter text", lambda c: experiment(c, "defenses: [{name: median, window: big}]"), 2, "defenses[0].window: expected an integer, got 'big'"),
    ("eval defense even window", lambda c: experiment(c, "defenses: [{name: median, window: 4}]"), 2, "experiment.yaml: defenses[0].window: window must be an odd integer >= 1, got 4"),
    ("eval defense quality 0", lambda c: experiment(c, "defenses: [none, {name: jpeg, quality: 0}]"), 2, "experiment.yaml: defenses[1].quality: quality must be an integer in 1..100, got 0"),
    ("eval defense tvm norm", lambda c: experiment(c, "defenses: [{name: tvm, norm: 3}]"), 2, "experiment.yaml: defenses[0].norm: norm must be 1 or 2, got 3"),
    ("eval nrp without weights", lambda c: experiment(c, "defenses: [nrp]"), 2, "experiment.yaml: defenses[0]: the nrp defense needs a purifier weights file"),
    ("eval nrp_dynamic weights null", lambda c: experiment(c, "defenses: [{name: nrp_dynamic, weights: null}]"), 2, "experiment.yaml: defenses[0].weights: the nrp_dynamic defense needs a purifier weights file"),
    ("eval defense weights missing", lambda c: experiment(c, "defenses: [{name: nrp, weights: gone.pth}]"), 2, "defenses[0].weights: file 'gone.pth' does not exist"),
    ("eval defense device", lambda c: experiment(c, "defenses: [{name: nrp_lite_shipped, device: cuda}]"), 2, "defenses[0].device: defense 'nrp_lite_shipped' takes no parameter 'device'"),
    ("eval unknown target", lambda c: experiment(c, "targets: [resnet81]"), 2, "targets[0]: unknown model 'resnet81'; known:"),
    ("eval empty ensemble member", lambda c: experiment(c, "sources: [resnet18+]"), 2, "sources[0]: empty ensemble member in 'resnet18+'"),
    ("eval model file missing", lambda c: experiment(c, "targets: [mine.pt]"), 2, "targets[0]: file 'mine.pt' does not exist"),
    ("eval device meta", lambda c: experiment(c, "device: meta"), 2, "experiment.yaml: device: device 'meta' cannot run nrp"),
    ("eval device number", lambda c: experiment(c, "device: 0"), 2, "device: expected a device name, got 0"),
    ("eval metric", lambda c: experiment(c, "metric: top2"), 2, "metric: unknown metric 'top2'; known: top1, top5, success_rate, fooling_rate"),
    ("eval stale", lambda c: experiment(c, "stale: maybe"), 2, "stale: unknown stale policy 'maybe'; known: recompute, refuse"),
    ("eval labels missing", lambda c: experiment(c, "labels: gone.csv"), 2, "labels: file 'gone.csv' does not exist"),
    ("eval images missing", lambda c: experiment(c, f"images: {c.tmp / 'gone'}"), 2, "images: folder"),
    ("eval model weights missing", lambda c: experiment(c, "model_weights: {resnet18: gone.pth}"), 2, "model_weights.resnet18: file 'gone.pth' does not exist"),
    ("eval preprocessing key", lambda c: experiment(c, "preprocessing: {resnet18: {crop: 1.0}}"), 2, "preprocessing.resnet18.crop: unknown key; known: input_size, crop_pct, interpolation, antialias"),
    ("eval preprocessing crop 2", lambda c: experiment(c, "preprocessing: {resnet18: {crop_pct: 2}}"), 2, "preprocessing.resnet18.crop_pct: expected a finite number in (0, 1], got 2"),
    ("eval grid defense typo", lambda c: experiment(c, "defenses: [none, jpeg]\ngrid_defense: JPEG"), 2, "grid_defense: 'JPEG' names no defense of the file; labels: none, jpeg"),
    ("eval curves attack", lambda c: experiment(c, "curves: {source: resnet18, target: resnet18, attacks: [mi_fgsn]}"), 2, "curves.attacks[0]: unknown attack 'mi_fgsn'"),
    ("eval curves not iterative", lambda c: experiment(c, "curves: {source: resnet18, target: resnet18, attacks: [fgsm]}"), 2, "curves: attack 'fgsm' takes no steps and step_size"),
    ("eval curves key", lambda c: experiment(c, "curves: {source: resnet18, target: resnet18, iteration: [1]}"), 2, "curves.iteration: unknown key; known: source, target, attacks"),
    ("eval curves missing target", lambda c: experiment(c, "curves: {source: resnet18}"), 2, "curves: missing 'target'"),
    ("eval curves 5", lambda c: experiment(c, "curves: 5"), 2, "curves: expected a mapping of source, target"),
    ("eval cross task key", lambda c: experiment(c, f"cross_task: {{images: {c.photos}, anotations: a.json}}"), 2, "cross_task.anotations: unknown key; known: images, annotations, masks"),
    ("eval cross task attack", lambda c: experiment(c, f"cross_task: {{images: {c.photos}, masks: {c.photos}, attacks: [fgsm]}}"), 2, "cross_task.attacks[0]: unknown cross_task attack 'fgsm'; known: precomputed, ssp"),
    ("eval cross task segmenter", lambda c: experiment(c, f"cross_task: {{images: {c.photos}, masks: {c.photos}, segmenters: [deeplab]}}"), 2, "cross_task.segmenters[0]: unknown segmentation model 'deeplab'; known: fcn, deeplabv3"),
    ("eval cross task no task", lambda c: experiment(c, f"cross_task: {{images: {c.photos}}}"), 2, "cross_task: set 'annotations' (COCO JSON, detection) and/or 'masks'"),
    ("eval cross task defense label", lambda c: experiment(c, f"cross_task: {{images: {c.photos}, masks: {c.photos}, defenses: [NRP]}}"), 2, "cross_task.defenses[0]: 'NRP' names no defense of the file"),
    ("eval adaptive 5", lambda c: experiment(c, "attacks: [{name: pgd, adaptive: 5}]"), 2, "attacks[0].adaptive: expected a mapping of gradient, eot, fixed, draws"),
    ("eval adaptive key", lambda c: experiment(c, "attacks: [{name: pgd, adaptive: {kind: pgd}}]"), 2, "attacks[0].adaptive.kind: unknown key; known: gradient, eot, fixed, draws, source, substitute, max_images"),
    ("eval adaptive gradient", lambda c: experiment(c, "attacks: [{name: pgd, adaptive: {gradient: bpda}}]"), 2, "attacks[0].adaptive.gradient: unknown gradient mode 'bpda'; known: full, identity, substitute"),
    ("eval adaptive substitute", lambda c: experiment(c, "attacks: [{name: pgd, adaptive: {gradient: substitute, substitute: jpg}}]"), 2, "attacks[0].adaptive.substitute: unknown defense 'jpg'"),
    ("eval adaptive label-free", lambda c: experiment(c, "attacks: [{name: ssp, adaptive: {}}]"), 2, "attacks[0].adaptive: attack 'ssp' takes no parameter 'adaptive'"),
    ("eval adaptive block", lambda c: experiment(c, "adaptive: {defense: none, target: resnet18, attacks: [{kind: pgd}]}"), 2, "adaptive: unknown key; known: images"),
    ("eval two problems", lambda c: experiment(c, "batch_size: 0\nmetric: top2"), 2, "batch_size: expected an integer >= 1, got 0 (1 more: metric)"),
    ("eval flag attack", lambda c: experiment(c, "", "--attacks", "fgsm,fgsn"), 2, "--attacks: attacks[1]: unknown attack 'fgsn'"),
    ("eval flag target", lambda c: experiment(c, "", "--targets", "resnet81"), 2, "--targets: targets[0]: unknown model 'resnet81'"),
    ("eval flag device", lambda c: experiment(c, "", "--device", "meta"), 2, "--device: device: device 'meta' cannot run nrp"),
    ("eval flag image size", lambda c: experiment(c, "", "--image-size", "9000"), 2, "argument --image-size: expected an integer in [1, 8192], got '9000'"),
    ("data cache in /proc", lambda c: ["data", "offline", "--cache", "/proc/nrp-cache"], 1, "/proc/nrp-cache"),
    ("train config binary", lambda c: ["train", "--config", c.write("t.yaml", b"\xff\xfe\x00"), "--out", c.out()], 2, "is not UTF-8 text (byte 0xff at offset 0)"),
    # data
    ("all-corrupt training data, 2 workers", lambda c: ["train", "--config", str(c.train_config), "--out", c.out(), "--workers", "2", "--data", str(all_corrupt(c))], 1, "could be decoded"),
]


def all_corrupt(ctx: Context) -> Path:
    folder = ctx.tmp / "corrupt"
    folder.mkdir()
    for index in range(4):
        (folder / f"{index}.png").write_bytes(b"not an image")
    return folder


@pytest.fixture
def context(tmp_path, photos, tiny_purifier, vgg_weights, train_config) -> Context:
    return Context(tmp_path, photos, tiny_purifier, vgg_weights, train_config)


def leftovers(root: Path) -> list[Path]:
    """Half-written files: temporary names of atomic writes, and any output image."""
    temporary = [p for p in root.rglob("*.tmp")]
    outputs = [p for p in (root / "out").rglob("*") if p.is_file() and p.name != ".nrp.lock"] if (root / "out").is_dir() else []
    return temporary + outputs


@pytest.mark.parametrize("case, argv, code, message", REFUSED, ids=[case[0] for case in REFUSED])
def test_hostile_input_gets_one_clear_line(context, capsys, case, argv, code, message):
    arguments = argv(context)
    before = {p for p in context.tmp.rglob("*")}
    exit_code = main(arguments)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("nrp: error: ")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert message in errors[0], errors[0]
    assert exit_code == code
    new = [p for p in leftovers(context.tmp) if p not in before]
    assert not new, new


# --- skipped with a warning, the run completes, exit code 3 --------------------------------------------


def tiny_image(folder: Path, name: str, side: int) -> None:
    Image.fromarray(np.full((side, side, 3), 90, np.uint8)).save(folder / name)


def nan_tiff(folder: Path) -> None:
    pixels = np.full((8, 8), 0.5, np.float32)
    pixels[3, 4] = np.nan
    Image.fromarray(pixels, mode="F").save(folder / "nan.tif")


def symlink_loop(folder: Path) -> None:
    os.symlink(folder / "loop_b.png", folder / "loop_a.png")
    os.symlink(folder / "loop_a.png", folder / "loop_b.png")


@dataclass
class Skipped:
    """A folder of one good image plus hostile files; the command, and the warning each hostile file gets."""

    make: Callable[[Path], None]
    command: Callable[[Context, Path], list[str]]
    warnings: list[str]
    written: list[str]


def purify_folder(ctx: Context, folder: Path, *extra: str) -> list[str]:
    return ["purify", str(folder), "--out", ctx.out(), "--weights", str(ctx.purifier), *extra]


SKIPPED = {
    "symlink loop": Skipped(symlink_loop, purify_folder, ["loop_a.png: Too many levels of symbolic links"], ["good.png"]),
    "nan pixel tiff": Skipped(nan_tiff, purify_folder, ["nan.tif: 1 pixel(s) are NaN or infinite"], ["good.png"]),
    "1x1 and 2x2 into ssp": Skipped(
        lambda f: (tiny_image(f, "one.png", 1), tiny_image(f, "two.png", 2)),
        lambda c, f: ["attack", "ssp", str(f), "--out", c.out(), "--backbone-weights", str(c.vgg), "--steps", "1",
                      "--layer", "conv3_1"],
        ["one.png is 1x1 px, smaller than the", "two.png is 2x2 px, smaller than the"], ["good.png"]),
    "1x1 into dim_ti": Skipped(
        lambda f: tiny_image(f, "one.png", 1),
        lambda c, f: ["attack", "dim_ti_fgsm", str(f), "--out", c.out(), "--model", str(c.tmp / "mean.pt"), "--steps", "1"],
        ["one.png is 1x1 px, smaller than the"], ["good.png"]),
    "1x1 into random resize pad": Skipped(
        lambda f: tiny_image(f, "one.png", 1), lambda c, f: ["defend", "random_resize_pad", str(f), "--out", c.out()],
        ["one.png is 1x1 px"], ["good.png"]),
    "2x2 into gaussian": Skipped(
        lambda f: tiny_image(f, "two.png", 2), lambda c, f: ["defend", "gaussian", str(f), "--out", c.out(), "--sigma", "2"],
        ["two.png is 2x2 px"], ["good.png"]),
    "webp wider than 16383": Skipped(
        lambda f: Image.fromarray(np.zeros((2, 16400, 3), np.uint8)).save(f / "wide.png"),
        lambda c, f: ["defend", "bit_depth", str(f), "--out", c.out(), "--format", "webp"],
        ["WEBP holds at most 16383 px a side, the image is 16400x2"], ["good.webp"]),
    "name too long for the output": Skipped(
        lambda f: tiny_image(f, "n" * 251 + ".png", 40),
        lambda c, f: ["defend", "bit_depth", str(f), "--out", c.out(), "--format", "webp"],
        ["its name is longer than 255 bytes"], ["good.webp"]),
}


class MeanClassifier(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(1, 2, 3))[:, None], torch.zeros(x.shape[0], 9)], dim=1)


@pytest.mark.parametrize("case", list(SKIPPED), ids=list(SKIPPED))
def test_hostile_files_are_skipped_with_a_warning_and_the_run_completes(context, capsys, case):
    spec = SKIPPED[case]
    folder = context.tmp / "in"
    folder.mkdir()
    tiny_image(folder, "good.png", 40)
    spec.make(folder)
    torch.jit.script(MeanClassifier()).save(str(context.tmp / "mean.pt"))
    code = main(spec.command(context, folder))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nrp: error" not in err, err
    for warning in spec.warnings:
        assert any(warning in line and "skipped" in line for line in err.splitlines()), (warning, err)
    assert code == exit_codes.SKIPPED
    written = sorted(str(p.relative_to(context.out())) for p in Path(context.out()).rglob("*") if p.is_file())
    assert written == spec.written
    assert not list(context.tmp.rglob("*.tmp"))


def test_an_output_that_is_a_folder_is_skipped_under_overwrite(context, capsys):
    folder = context.tmp / "in"
    folder.mkdir()
    tiny_image(folder, "a.png", 40)
    tiny_image(folder, "b.png", 40)
    (Path(context.out()) / "a.png").mkdir(parents=True)
    code = main(["defend", "bit_depth", str(folder), "--out", context.out(), "--overwrite"])
    err = capsys.readouterr().err
    assert code == exit_codes.SKIPPED and "Traceback" not in err
    assert "a.png: a folder of that name is in the way" in err
    assert (Path(context.out()) / "b.png").is_file() and not list(context.tmp.rglob("*.tmp"))


def test_a_242_character_name_is_written_not_lost(context, capsys):
    """The temporary name of the atomic write used to pass the 255-byte limit, losing every later file."""
    folder = context.tmp / "in"
    folder.mkdir()
    long_name = "l" * 238 + ".png"
    tiny_image(folder, long_name, 40)
    tiny_image(folder, "z.png", 40)
    code = main(["defend", "bit_depth", str(folder), "--out", context.out()])
    assert code == exit_codes.OK, capsys.readouterr().err
    assert sorted(p.name for p in Path(context.out()).iterdir()) == [long_name, "z.png"]


# --- through real processes ----------------------------------------------------------------------------


def run_nrp(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nrp.cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_a_fifo_among_the_images_is_skipped_without_hanging(context):
    folder = context.tmp / "in"
    folder.mkdir()
    tiny_image(folder, "a.png", 40)
    os.mkfifo(folder / "b.png")
    tiny_image(folder, "c.png", 40)
    result = run_nrp("defend", "bit_depth", str(folder), "--out", context.out())
    assert result.returncode == exit_codes.SKIPPED and "Traceback" not in result.stderr
    assert "b.png: it is a FIFO, not an image file" in result.stderr
    assert sorted(p.name for p in Path(context.out()).iterdir()) == ["a.png", "c.png"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["purify", "IN", "--out", "/proc/nrp-x"], 1, "nrp: error: --out /proc/nrp-x cannot be written"),
        (["purify", "IN", "--out", "OUT", "--seed", HUGE_SEED], 2, "nrp: error: argument --seed: expected an integer"),
        (["defend", "median", "IN", "--out", "OUT", "--window", "nan"], 2, "nrp: error: argument --window"),
    ],
)
def test_exit_codes_of_the_installed_command(context, args, code, message):
    args = [str(context.photos) if a == "IN" else context.out() if a == "OUT" else a for a in args]
    result = run_nrp(*args)
    assert result.returncode == code
    assert result.stderr.count("nrp: error: ") == 1 and message in result.stderr and "Traceback" not in result.stderr
