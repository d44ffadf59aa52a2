"""``nrp purify``: remove adversarial noise from images with a purifier checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nrp.cli import exit_codes
from nrp.cli.common import add_io_arguments, plan, process
from nrp.cli.messages import PURIFIER_HINT
from nrp.devices import resolve_device
from nrp.errors import CheckpointError
from nrp.purifiers import PURIFIERS, Purifier, load_network, shipped_weights
from nrp.purifiers.dynamic import DEFAULT_NOISE_STD
from nrp.purifiers.tiling import DEFAULT_TILE_OVERLAP
from nrp.validation import NON_NEGATIVE_INT, minimum_input_size

DEFAULT_TILE = 512


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp purify`` and its flags."""
    parser = subparsers.add_parser(
        "purify",
        help="purify images with an NRP checkpoint",
        description="Purify images: run them through a Neural Representation Purifier and write the results.",
    )
    add_io_arguments(parser)
    parser.add_argument("--weights", help="purifier weights (.pth/.pt/.safetensors): the authors' NRP.pth or NRP_resG.pth, or a file nrp wrote "
                        "(default: the NRP-Lite shipped with nrp, trained offline by this project)")
    parser.add_argument("--purifier", choices=sorted(PURIFIERS), help="architecture; only a check, files say what they hold")
    parser.add_argument("--dynamic", action="store_true", help=f"the authors' dynamic defense: Gaussian noise (sigma {DEFAULT_NOISE_STD}) projected into 16/255 before purifying")
    parser.add_argument("--tile", "--tile-size", type=NON_NEGATIVE_INT, default=DEFAULT_TILE, help=f"purify images larger than N pixels tile by tile (default {DEFAULT_TILE}; 0: never tile)")
    parser.add_argument("--tile-overlap", type=NON_NEGATIVE_INT, default=DEFAULT_TILE_OVERLAP, help=f"context and blend width between tiles, pixels (default {DEFAULT_TILE_OVERLAP})")
    parser.set_defaults(run=run, weights_hint=PURIFIER_HINT)


def run(args: argparse.Namespace) -> int:
    """Purify every input image; returns the exit code."""
    weights = args.weights or shipped_weights()
    if not Path(weights).is_file():  # refused even when every output exists: those were made by other weights
        raise CheckpointError(f"weights file not found: {weights}")
    device = resolve_device(args.device)
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK
    network = load_network(weights, args.purifier, map_location=device)
    generator = torch.Generator(device).manual_seed(args.seed)
    purifier = Purifier(network, dynamic=args.dynamic, tile_size=args.tile or None, tile_overlap=args.tile_overlap, generator=generator)

    def transform(batch: torch.Tensor, indices: list[int], bar) -> torch.Tensor:
        with torch.inference_mode():
            return purifier(batch)

    return process(sources, outputs, transform, args.batch_size, device, "purify",
                   min_size=minimum_input_size(network, device))
