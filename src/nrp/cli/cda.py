"""``nrp attack cda``: CDA's adversarial images from a trained generator, projected into the eps ball."""

from __future__ import annotations

import argparse

from nrp.attacks import cda, load_cda_generator
from nrp.cli import exit_codes
from nrp.cli.common import add_io_arguments, plan, process
from nrp.devices import resolve_device
from nrp.units import PIXEL_SCALE, check_pixel_budget


def add_parser(attacks: argparse._SubParsersAction) -> None:
    """Register ``nrp attack cda``."""
    parser = attacks.add_parser(
        "cda",
        help="Cross-Domain Attack: a trained generator's perturbation (the paper's Table 2)",
        description="CDA (Naseer et al., NeurIPS 2019): run a CDA generator (the authors' released .pth, or one "
        "saved from torchattack's) on every image and clip its output into the eps ball. eps is in 0-255 units.",
    )
    add_io_arguments(parser)
    parser.add_argument("--weights", required=True, help="the generator's weights file (a plain state dict)")
    parser.add_argument("--inception", action="store_true", help="an Inception-v3 generator (299 px input, output cropped from 300)")
    parser.add_argument("--eps", type=float, default=16.0, help="L-inf budget in 0-255 units (default 16; Table 2 uses 8 and 16)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Perturb every input; returns the exit code."""
    check_pixel_budget("--eps", args.eps)
    device = resolve_device(args.device)
    network = load_cda_generator(args.weights, args.inception, device)  # before any output exists
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK
    return process(sources, outputs, lambda batch, indices, bar: cda(batch, network, eps=args.eps / PIXEL_SCALE),
                   args.batch_size, device, "cda")
