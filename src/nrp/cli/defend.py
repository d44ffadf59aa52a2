"""``nrp defend NAME``: apply an input-transformation defense (or a purifier) to images and write the results."""

from __future__ import annotations

import argparse
import inspect

import torch

from nrp.cli import exit_codes
from nrp.cli.common import add_io_arguments, plan, process
from nrp.cli.flag_help import plain_text
from nrp.cli.messages import PURIFIER_HINT
from nrp.cli.signature_flags import add_signature_flags, read_signature_flags
from nrp.defenses import DEFENSES, check_defense, create_defense
from nrp.devices import resolve_device
from nrp.errors import InputError, ParameterError, UsageError
from nrp.validation import minimum_input_size

# Filled by the command itself rather than through a flag of the same name.
HANDLED = {"generator", "device"}
PIXEL_ARGUMENTS = {"noise_std", "noise_eps"}
SUMMARIES = {
    "jpeg": "JPEG compression with Pillow's codec (paper: quality 75, 50, 20)",
    "jpeg_differentiable": "differentiable JPEG approximation, for attacks that need gradients",
    "tvm": "total variation minimisation of Guo et al. (paper: weight 10 or 30)",
    "median": "median filter (paper: window 3)",
    "random_resize_pad": "random resizing and padding of Xie et al. (R&P)",
    "bit_depth": "bit-depth reduction",
    "gaussian": "Gaussian smoothing",
    "nrp": "the Neural Representation Purifier (static)",
    "nrp_dynamic": "the Neural Representation Purifier with the authors' dynamic noise",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp defend`` with one subcommand per defense in the registry."""
    defend = subparsers.add_parser("defend", help="apply a defense to images", description="Apply a defense to images.")
    defenses = defend.add_subparsers(dest="defense", required=True, metavar="DEFENSE")
    for name, factory in sorted(DEFENSES.items()):
        if name == "none":
            continue
        summary = SUMMARIES.get(name) or plain_text((inspect.getdoc(factory) or name).splitlines()[0])
        parser = defenses.add_parser(name, help=summary, description=summary)
        add_io_arguments(parser)
        add_signature_flags(parser, factory, HANDLED, PIXEL_ARGUMENTS)
        hint = PURIFIER_HINT if "weights" in inspect.signature(factory).parameters else None
        parser.set_defaults(run=run, defense_factory=factory, defense_name=name, weights_hint=hint)


def run(args: argparse.Namespace) -> int:
    """Defend every input image; returns the exit code."""
    parameters = read_signature_flags(args, args.defense_factory, HANDLED, PIXEL_ARGUMENTS)
    check_flags(args.defense_name, parameters)
    device = resolve_device(args.device)
    accepted = inspect.signature(args.defense_factory).parameters
    if "generator" in accepted:
        parameters["generator"] = torch.Generator().manual_seed(args.seed)
    if "device" in accepted:
        parameters["device"] = device
    defense = create_defense(args.defense_name, **parameters).to(device)  # validates before any image is read
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK

    def transform(batch: torch.Tensor, indices: list[int], bar) -> torch.Tensor:
        with torch.inference_mode():
            return defense(batch)

    return process(sources, outputs, transform, args.batch_size, device, args.defense_name,
                   min_size=_minimum_size(defense, parameters.get("generator"), device))


def check_flags(name: str, parameters: dict) -> None:
    """The defense's own range checks (:func:`~nrp.defenses.check_defense`, nothing loaded) as usage errors
    naming the flag: exit code 2 before any image is read or weights file opened."""
    try:
        check_defense(name, **parameters)
    except ParameterError as error:
        flag = "--" + error.parameter.replace("_", "-")
        units = " ([0, 1] units; the flag is in 0-255 units)" if error.parameter in PIXEL_ARGUMENTS else ""
        raise UsageError(f"argument {flag}: {error}{units}") from None
    except InputError as error:  # flags that contradict each other (TVM's --weight and --lamb)
        raise UsageError(str(error)) from None


def _minimum_size(defense: torch.nn.Module, generator: torch.Generator | None, device: torch.device) -> int:
    """The defense's smallest input; its random stream is put back, so outputs do not depend on the probe."""
    state = generator.get_state() if generator is not None else None
    try:
        return minimum_input_size(defense, device)
    finally:
        if generator is not None:
            generator.set_state(state)
