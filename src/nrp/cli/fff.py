"""``nrp attack fff``: craft (or reuse) one Fast Feature Fool universal perturbation and add it to images."""

from __future__ import annotations

import argparse
import logging

import torch
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

from nrp.attacks import apply_universal, fff, load_perturbation, save_perturbation
from nrp.attacks.fff import DEFAULT_EPS, DEFAULT_ITERATIONS
from nrp.cli import exit_codes
from nrp.cli.common import add_io_arguments, plan, process
from nrp.cli.messages import FFF_HINT
from nrp.devices import resolve_device
from nrp.errors import InputError
from nrp.features import activation_layers, build_feature_extractor
from nrp.units import PIXEL_SCALE
from nrp.validation import COUNT, PIXELS, Range

logger = logging.getLogger("nrp")
PERTURBATION_FILE = "fff_perturbation.safetensors"
MIN_SIZE = Range(int, 32)  # the side of the crafted perturbation: VGG's five pools need 32 px


def add_parser(attacks: argparse._SubParsersAction) -> None:
    """Register ``nrp attack fff``."""
    parser = attacks.add_parser(
        "fff",
        help="Fast Feature Fool: a data-free universal perturbation",
        description="Fast Feature Fool (Appendix F): maximise the activations of a backbone's layers with one "
        f"perturbation, saved as OUT/{PERTURBATION_FILE}, then add it to every input (resized to each image). "
        "eps is in 0-255 units.",
    )
    add_io_arguments(parser)
    parser.add_argument("--backbone", default="vgg16", help="backbone whose activations are maximised (default vgg16)")
    parser.add_argument("--backbone-weights", help="weights file of the backbone, when it is not in the torchvision/timm cache")
    parser.add_argument("--no-download", action="store_true", help="fail at once if the backbone weights are not cached")
    parser.add_argument("--layers", help="comma-separated layers (default: every conv's ReLU of a VGG)")
    parser.add_argument("--eps", type=PIXELS, default=DEFAULT_EPS * PIXEL_SCALE, help=f"L-inf radius, 0-255 units (default {DEFAULT_EPS * PIXEL_SCALE:g})")
    parser.add_argument("--iterations", type=COUNT, default=DEFAULT_ITERATIONS, help=f"optimisation steps (default {DEFAULT_ITERATIONS}, the paper's)")
    parser.add_argument("--size", type=MIN_SIZE, default=224, help="side of the square perturbation crafted (default 224)")
    parser.add_argument("--perturbation", help="apply this saved perturbation instead of crafting one")
    parser.set_defaults(run=run, weights_hint=FFF_HINT)


def run(args: argparse.Namespace) -> int:
    """Craft or load the perturbation, then perturb every input; returns the exit code."""
    device = resolve_device(args.device)
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK
    delta = _perturbation(args, device).to(device)

    def transform(batch: torch.Tensor, indices: list[int], bar) -> torch.Tensor:
        resized = F.interpolate(delta[None], size=batch.shape[-2:], mode="bilinear", align_corners=False)[0]
        return apply_universal(batch, resized.clamp(-args.eps / PIXEL_SCALE, args.eps / PIXEL_SCALE))

    return process(sources, outputs, transform, args.batch_size, device, "fff")


def _perturbation(args: argparse.Namespace, device: torch.device) -> torch.Tensor:
    if args.perturbation:
        return load_perturbation(args.perturbation)
    saved = args.out / PERTURBATION_FILE
    if saved.is_file() and not args.overwrite:
        logger.info("reusing %s (use --overwrite to craft a new one)", saved)
        return load_perturbation(saved)
    layers = [layer.strip() for layer in args.layers.split(",")] if args.layers else _activation_layers(args.backbone)
    extractor = build_feature_extractor(
        args.backbone, layers, weights=args.backbone_weights, download=not args.no_download
    ).to(device)
    with tqdm(total=args.iterations, desc="fff", unit="it", disable=None) as bar:
        def on_step(iteration: int, objective: float) -> None:
            bar.update(1)
            bar.set_postfix(objective=f"{objective:.4g}", refresh=False)

        delta = fff(
            extractor, shape=(3, args.size, args.size), eps=args.eps / PIXEL_SCALE, iterations=args.iterations,
            generator=torch.Generator().manual_seed(args.seed), on_step=on_step,
        )
    save_perturbation(saved, delta, backbone=args.backbone, eps=args.eps, iterations=args.iterations)
    logger.info("perturbation saved to %s", saved)
    return delta


def _activation_layers(backbone: str) -> list[str]:
    """FFF's default: the ReLU after every convolution of a VGG ("the activation layers of VGG-16")."""
    if backbone not in torchvision.models.list_models(module=torchvision.models):
        raise InputError(f"name the layers of {backbone} to maximise with --layers")
    return activation_layers(torchvision.models.get_model(backbone, weights=None))
