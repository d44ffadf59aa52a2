"""``nrp eval``: run an experiment file (the paper's tables), resuming whatever is already stored."""

from __future__ import annotations

import argparse
import contextlib

from nrp.cli import exit_codes
from nrp.cli.messages import EVAL_HINT
from nrp.cli.progress import StageProgress, stage_plan
from nrp.eval.experiment_file import load_eval_config
from nrp.eval.run import run_evaluation
from nrp.run_lock import is_rank_zero, run_folder_lock
from nrp.validation import COUNT, IMAGE_SIDE, LABEL_OFFSET, PIXELS, SEED, check_output_folder, number_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp eval``; each flag overrides the experiment file's key of the same name."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate attacks and defenses (the paper's tables)",
        description="Craft each (source, attack, eps) set once and store it as PNG, then score every (defense, "
        "target) pair: top-1/top-5 accuracy, attack success rate and fooling rate, plus the cross-task protocol "
        "and plots when configured. Writes RUN/report/{results.json,results.csv,results.md,index.html,grid.png}. "
        "Re-running resumes; torchrun --nproc_per_node=K shares the work among K processes. "
        "eps is in 0-255 units. Example configs: configs/table1.yaml, configs/table2_cda.yaml, configs/table5_ssp.yaml.",
    )
    add = parser.add_argument
    add("config", nargs="?", help="experiment file (YAML or JSON); flags override its keys")
    add("--images", help="evaluation images: a folder, a folder per class, or the NeurIPS-2017 dev set folder")
    add("--labels", help="labels CSV (filename,label or ImageId,TrueLabel,TargetClass)")
    add("--label-offset", type=LABEL_OFFSET, help="subtracted from every label (1 for 1-based, 1001-class labels)")
    add("--out", help="run folder (stored sets, predictions, report)")
    add("--sources", help="comma-separated source models; join an ensemble with + (inc_v3+inc_v4)")
    add("--attacks", help="comma-separated attack names (parameters: use the experiment file)")
    add("--defenses", help="comma-separated defense names (none = undefended)")
    add("--targets", help="comma-separated target models")
    add("--eps", type=number_list(PIXELS), help="comma-separated budgets in 0-255 units (default 16)")
    add("--image-size", type=IMAGE_SIDE, help="images are resized and centre-cropped to this square (default 224)")
    add("--max-images", type=COUNT, help="evaluate only the first N images")
    add("--batch-size", type=COUNT, help="images per batch (default 16)")
    add("--seed", type=SEED, help="seed of every random draw (default 0)")
    add("--device", help="cpu, cuda or auto (default)")
    add("--stale", choices=("recompute", "refuse"),
        help="a stored set or prediction made under another configuration: recompute it (default, logged) or refuse to run")
    parser.set_defaults(run=run, weights_hint=EVAL_HINT)


def run(args: argparse.Namespace) -> int:
    """Load the configuration, run the experiment with progress bars, print where the report went."""
    overrides = {key: getattr(args, key) for key in ("images", "labels", "label_offset", "out", "sources", "attacks",
                                                      "defenses", "targets", "eps", "image_size", "max_images",
                                                      "batch_size", "seed", "device", "stale")}
    config = load_eval_config(args.config, overrides, strict=True)  # every name, parameter and path, before any work
    check_output_folder(config.out)
    with run_folder_lock(config.out) if is_rank_zero() else contextlib.nullcontext():
        paths = run_evaluation(config, progress=StageProgress(stage_plan(config)))
    if "html" in paths:
        print(f"report: {paths['html']} (Markdown: {paths['report_markdown']})")
        print(f"table:  {paths['markdown']}")
    return exit_codes.OK

