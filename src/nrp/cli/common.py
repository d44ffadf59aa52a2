"""What every image-processing subcommand shares: input/output flags, output planning, the batch loop."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from nrp.cli import exit_codes
from nrp.errors import InputError, NRPError, UsageError
from nrp.io import ImageSource, find_images, iter_batches, plan_outputs, write_image
from nrp.validation import COUNT, SEED, check_output_folder

logger = logging.getLogger("nrp")

OUTPUT_FORMATS = ("png", "webp", "tiff", "bmp", "jpg")


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for inputs, outputs, batching, device and seed."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="output folder; input folder structure is mirrored")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="png", help="output format (default: lossless png)")
    parser.add_argument("--batch-size", type=COUNT, default=4, help="images per batch (same-size images are batched)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of every random draw (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")


def check_positive(name: str, value: float, minimum: float = 1) -> None:
    """Refuse ``value`` below ``minimum`` with a message naming the flag."""
    if value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")


def plan(args: argparse.Namespace) -> tuple[list[ImageSource], list[Path]]:
    """Check ``--out`` can be written, find the inputs (never inside ``--out``) and their outputs, dropping
    those already done unless ``--overwrite``."""
    check_output_folder(args.out)
    sources = find_images(args.inputs, exclude=[args.out])
    outputs = plan_outputs(sources, args.out, suffix="." + args.format)
    if args.overwrite:
        return sources, outputs
    todo = [(source, output) for source, output in zip(sources, outputs) if not output.exists()]
    if len(todo) < len(sources):  # said on stdout, beside "wrote N image(s)": a rerun with other settings keeps them
        print(f"{len(sources) - len(todo)} of {len(sources)} outputs already exist in {args.out} and are kept "
              "(--overwrite redoes them)")
    return [source for source, _ in todo], [output for _, output in todo]


def process(
    sources: list[ImageSource],
    outputs: list[Path],
    transform: Callable[[torch.Tensor, list[int], tqdm], torch.Tensor],
    batch_size: int,
    device: torch.device,
    description: str,
    min_size: int = 1,
) -> int:
    """Decode, transform and write every source batch by batch; return the exit code.

    ``transform`` maps a batch ``(B, 3, H, W)`` in [0, 1] on ``device`` to its result; it also receives the
    batch's positions in ``sources`` (to look up labels) and the progress bar (to report finer progress).
    Files that cannot be decoded, are smaller than ``min_size`` (the network's smallest input), or cannot
    be written in the output format (a name too long, WebP past 16383 px) are skipped with a warning naming
    them, and the exit code says so.
    """
    skipped: list[ImageSource] = []

    def skip(source: ImageSource, error: NRPError) -> None:
        logger.warning("skipped: %s", error)
        skipped.append(source)

    def on_skip(source: ImageSource, error: NRPError) -> None:
        skip(source, error)
        bar.update(1)

    with tqdm(total=len(sources), desc=description, unit="img", disable=None) as bar:
        for indices, batch in iter_batches(sources, batch_size, on_skip=on_skip, min_size=min_size):
            result = transform(batch.to(device), indices, bar)
            for index, image in zip(indices, result):
                try:
                    write_image(image, outputs[index])
                except InputError as error:
                    skip(sources[index], error)
            bar.update(len(indices))
    done = len(sources) - len(skipped)
    where = f" to {os.path.commonpath([output.parent for output in outputs])}" if outputs else ""
    print(f"{description}: wrote {done} image(s){where}" + (f", skipped {len(skipped)} undecodable" if skipped else ""))
    if skipped:
        logger.warning("%d input(s) could not be used and were skipped", len(skipped))
        return exit_codes.SKIPPED
    return exit_codes.OK
