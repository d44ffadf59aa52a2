"""``nrp attack ssp``: craft Self-supervised Perturbation adversarial images (Algorithm 1)."""

from __future__ import annotations

import argparse

import torch

from nrp.attacks import DISTANCES, ssp
from nrp.attacks.ssp import DEFAULT_STEP_SIZE, DEFAULT_STEPS, STARTS, reference_preprocess
from nrp.cli import cda, exit_codes, fff, transfer
from nrp.cli.common import add_io_arguments, check_positive, plan, process
from nrp.cli.messages import BACKBONE_HINT
from nrp.devices import resolve_device
from nrp.errors import InputError
from nrp.features import DEFAULT_BACKBONE, DEFAULT_LAYER, build_feature_extractor
from nrp.units import PIXEL_SCALE, check_pixel_budget
from nrp.validation import COUNT, PIXELS, POSITIVE, minimum_input_size


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp attack`` and its attacks."""
    attack = subparsers.add_parser("attack", help="craft adversarial images", description="Craft adversarial images.")
    attacks = attack.add_subparsers(dest="attack", required=True, metavar="ATTACK")
    transfer.add_parsers(attacks)
    fff.add_parser(attacks)
    cda.add_parser(attacks)
    parser = attacks.add_parser(
        "ssp",
        help="Self-supervised Perturbation: label-free feature-distortion attack",
        description="Self-supervised Perturbation (Algorithm 1): maximise the distortion of a pretrained "
        "network's features inside an L-inf ball. Needs no labels. eps and step size are in 0-255 pixel units.",
    )
    add_io_arguments(parser)
    parser.add_argument("--eps", type=PIXELS, default=16.0, help="L-inf budget in 0-255 pixel units (default 16)")
    parser.add_argument("--steps", type=COUNT, help=f"iterations (default {DEFAULT_STEPS})")
    parser.add_argument("--step-size", type=POSITIVE, help=f"step in 0-255 units (default {DEFAULT_STEP_SIZE * PIXEL_SCALE:g}, the authors' 0.01)")
    parser.add_argument("--distance", choices=sorted(DISTANCES), help="feature distance (default mse, as the authors' code; the paper names mae)")
    parser.add_argument("--start", choices=STARTS, help="random start: normal (default; authors' code: pure noise) or uniform in the ball")
    parser.add_argument("--reference", action="store_true", help="the authors' ssp.py exactly: resize 256, centre crop 224, "
                        "100 fixed steps of 0.01 from N(0,1) noise, batch-mean MSE (refuses --steps/--step-size/--distance/--start)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"torchvision model name or timm/<name> (default {DEFAULT_BACKBONE})")
    parser.add_argument("--layer", default=DEFAULT_LAYER, help=f"layer whose features are distorted (default {DEFAULT_LAYER}: VGG16 features[:16])")
    parser.add_argument("--backbone-weights", help="weights file of the backbone, when it is not in the torchvision/timm cache")
    parser.add_argument("--no-download", action="store_true", help="fail at once if the backbone weights are not cached")
    parser.set_defaults(run=run, weights_hint=BACKBONE_HINT)


def run(args: argparse.Namespace) -> int:
    """Attack every input image; returns the exit code."""
    _settle_ssp_settings(args)
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

        if args.reference:
            batch = reference_preprocess(batch)
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
            reference=args.reference,
        )

    return process(sources, outputs, transform, args.batch_size, device, "ssp",
                   min_size=minimum_input_size(extractor, device))


def _settle_ssp_settings(args: argparse.Namespace) -> None:
    """Fill the defaults of the flags that ``--reference`` fixes, refusing them beside it."""
    fixed = {"steps": DEFAULT_STEPS, "step_size": DEFAULT_STEP_SIZE * PIXEL_SCALE, "distance": "mse", "start": "normal"}
    given = [name for name in fixed if getattr(args, name) is not None]
    if args.reference and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(f"--reference fixes the authors' settings; drop {flags}")
    for name, value in fixed.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
