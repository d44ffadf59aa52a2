"""``nrp attack ssp``: craft Self-supervised Perturbation adversarial images (Algorithm 1)."""

from __future__ import annotations

import argparse

import torch

from nrp.attacks import DISTANCES, ssp
from nrp.attacks.ssp import DEFAULT_STEP_SIZE, DEFAULT_STEPS, STARTS
from nrp.cli import exit_codes, fff, transfer
from nrp.cli.common import add_io_arguments, check_positive, plan, process
from nrp.devices import resolve_device
from nrp.errors import InputError
from nrp.features import DEFAULT_BACKBONE, DEFAULT_LAYER, build_feature_extractor
from nrp.units import PIXEL_SCALE, check_pixel_budget


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp attack`` and its attacks."""
    attack = subparsers.add_parser("attack", help="craft adversarial images", description="Craft adversarial images.")
    attacks = attack.add_subparsers(dest="attack", required=True, metavar="ATTACK")
    transfer.add_parsers(attacks)
    fff.add_parser(attacks)
    parser = attacks.add_parser(
        "ssp",
        help="Self-supervised Perturbation: label-free feature-distortion attack",
        description="Self-supervised Perturbation (Algorithm 1): maximise the distortion of a pretrained "
        "network's features inside an L-inf ball. Needs no labels. eps and step size are in 0-255 pixel units.",
    )
    add_io_arguments(parser)
    parser.add_argument("--eps", type=float, default=16.0, help="L-inf budget in 0-255 pixel units (default 16)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"iterations (default {DEFAULT_STEPS})")
    parser.add_argument("--step-size", type=float, default=DEFAULT_STEP_SIZE * PIXEL_SCALE, help=f"step in 0-255 units (default {DEFAULT_STEP_SIZE * PIXEL_SCALE:g}, the authors' 0.01)")
    parser.add_argument("--distance", choices=sorted(DISTANCES), default="mse", help="feature distance (default mse, as the authors' code; the paper names mae)")
    parser.add_argument("--start", choices=STARTS, default="normal", help="random start: normal (authors' code: pure noise) or uniform in the ball")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"torchvision model name or timm/<name> (default {DEFAULT_BACKBONE})")
    parser.add_argument("--layer", default=DEFAULT_LAYER, help=f"layer whose features are distorted (default {DEFAULT_LAYER}: VGG16 features[:16])")
    parser.add_argument("--backbone-weights", help="weights file of the backbone, when it is not in the torchvision/timm cache")
    parser.add_argument("--no-download", action="store_true", help="fail at once if the backbone weights are not cached")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Attack every input image; returns the exit code."""
    check_pixel_budget("--eps", args.eps)
    check_positive("--steps", args.steps)
    if args.step_size <= 0:
        raise InputError(f"--step-size must be > 0 (0-255 units), got {args.step_size:g}")
    device = resolve_device(args.device)
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK
    extractor = build_feature_extractor(
        args.backbone, args.layer, weights=args.backbone_weights, download=not args.no_download
    ).to(device)
    generator = torch.Generator().manual_seed(args.seed)

    def transform(batch: torch.Tensor, indices: list[int], bar) -> torch.Tensor:
        def on_step(step: int, distance: torch.Tensor) -> None:
            bar.set_postfix(step=f"{step + 1}/{args.steps}", distance=f"{distance.mean().item():.4g}")

        return ssp(
            batch,
            extractor,
            eps=args.eps / PIXEL_SCALE,
            step_size=args.step_size / PIXEL_SCALE,
            steps=args.steps,
            distance=args.distance,
            start=args.start,
            generator=generator,
            on_step=on_step,
        )

    return process(sources, outputs, transform, args.batch_size, device, "ssp")
