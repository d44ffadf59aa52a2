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
from nrp.offline import OfflineLayout, default_cache, prepare_offline
from nrp.offline.agreement import GCOMPRIS_INSTALL
from nrp.offline.demo import BLACK_BOX_TARGET, demo_config

# Evaluation set -> default run folder.
EVAL_SETS = {"foolbox": "nrp-demo", "agreement": "nrp-demo-agreement"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="offline demo: transfer attacks vs defenses on EfficientNet-Lite0/1/2 and real photos",
        description="Craft SSP, FGSM, MI-FGSM, DIM and DIM-TI (eps 16) on EfficientNet-Lite0 and the Lite0+Lite1 "
        "ensemble, defend with JPEG, TVM, median, R&P and the shipped NRP-Lite, and report top-1 accuracy of the "
        "black-box EfficientNet-Lite2 (and every model) as in the paper's Table 1, with an image grid and an "
        "HTML page. Needs: pip install 'nrp-purifier[demo]'. About 5 minutes on 2 CPU cores; re-runs resume.",
    )
    parser.add_argument("--eval-set", choices=EVAL_SETS, default="foolbox",
                        help="foolbox: the 20 human-labelled ImageNet photos of the foolbox wheel; agreement: up to 100 "
                        "photos of Debian's gcompris-qt-data labelled by the class Lite0, Lite1 and Lite2 agree on "
                        "(see nrp data offline; about 25 minutes on 2 CPU cores). Default foolbox")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default ./nrp-demo, or ./nrp-demo-agreement)")
    parser.add_argument("--cache", type=Path, default=None, help=f"where the photos are laid out (default {default_cache()})")
    parser.add_argument("--quick", action="store_true", help="4 images and few attack steps: a smoke test in about a minute")
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
        if not layout.agreement_labels.is_file():  # built by `nrp data offline`, or here on first use
            layout = prepare_offline(args.cache, agreement=True)
        images, labels = layout.agreement_images, layout.agreement_labels
        if not labels.is_file():
            raise InputError(f"the agreement evaluation set needs Debian's gcompris-qt-data: {GCOMPRIS_INSTALL}")
    out = args.out if args.out is not None else Path(EVAL_SETS[args.eval_set])
    config = demo_config(images, labels, out, quick=args.quick, seed=args.seed)
    plan = stage_plan(config)
    print(f"nrp demo: step 1/3 done: photos in {images}", file=sys.stderr)
    print(f"nrp demo: step 2/3: {len(plan)} stages of attacks, defenses and scores into {out} (a re-run resumes)",
          file=sys.stderr, flush=True)
    paths = run_evaluation(config, progress=StageProgress(plan))
    print("nrp demo: step 3/3 done: report written", file=sys.stderr)
    rows = [row for row in _rows(paths["json"]) if row["target"] == BLACK_BOX_TARGET]
    print(f"evaluation set: {args.eval_set} ({images})")
    print(markdown_table(rows, metric="top1", target=BLACK_BOX_TARGET))
    print(f"\nreport: {paths['html']} (Markdown: {paths['report_markdown']})  ({time.perf_counter() - start:.0f} s)")
    return exit_codes.OK


def _rows(results: Path) -> list[dict]:
    from nrp.eval.reports import read_results_json
    return [row.to_dict() for row in read_results_json(results)["rows"]]
