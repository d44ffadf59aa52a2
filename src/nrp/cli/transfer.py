"""``nrp attack NAME``: the transfer attacks of the paper's Tables 1 and 5 against one or more source models.

One subcommand per registered attack; its flags are read off the attack function's keyword arguments, so
every attack exposes exactly the knobs it has. Pixel quantities are in 0-255 units on the command line.
"""

from __future__ import annotations

import argparse
import inspect

import torch

from nrp.attacks import ATTACKS
from nrp.attacks.checks import check_diversity_scale, check_kernel_size, check_probability
from nrp.cli import exit_codes
from nrp.cli.common import add_io_arguments, plan, process
from nrp.cli.flag_help import plain_text
from nrp.cli.messages import MODEL_HINT
from nrp.cli.models import add_model_arguments, load_models
from nrp.cli.signature_flags import add_signature_flags, read_signature_flags
from nrp.devices import resolve_device
from nrp.errors import InputError, UsageError
from nrp.io.labels import folder_labels, labels_for, read_labels_csv
from nrp.units import check_pixel_budget
from nrp.validation import minimum_input_size

PIXEL_ARGUMENTS = {"eps", "step_size", "alpha"}
# Arguments the command line fills itself rather than through a flag of the same name.
HANDLED = {"model", "x", "y", "target", "generator"}
# Attacks with a command of their own (label-free or data-free).
OWN_COMMANDS = {"ssp", "fff", "cda"}


def add_parsers(attacks: argparse._SubParsersAction) -> None:
    """One ``nrp attack NAME`` subcommand per attack in the registry; a second name of one function is its alias."""
    for name, function in sorted(ATTACKS.items()):
        if name in OWN_COMMANDS:
            continue
        summary = plain_text((inspect.getdoc(function) or name).splitlines()[0])
        canonical = attack_name(function)
        if canonical != name:
            summary = f"alias of {canonical}: {summary}"
        parser = attacks.add_parser(name, help=summary, description=summary + " Pixel quantities are in 0-255 units.")
        add_io_arguments(parser)
        add_model_arguments(parser)
        parser.add_argument("--labels", help="CSV of image,label[,target] (NeurIPS-2017 ImageId,TrueLabel,TargetClass also read)")
        parser.add_argument("--label-offset", type=int, default=0, help="subtracted from CSV classes (1 for the NeurIPS-2017 set)")
        parser.add_argument("--class-folders", action="store_true", help="labels from a folder-per-class layout (sorted folder names)")
        if "target" in inspect.signature(function).parameters:
            parser.add_argument("--targeted", action="store_true", help="targeted: the CSV's target column, else random targets (seeded)")
        add_signature_flags(parser, function, HANDLED, PIXEL_ARGUMENTS)
        parser.set_defaults(run=run, attack_function=function, attack_name=name, weights_hint=MODEL_HINT)


def attack_name(function) -> str:
    """The registered name of ``function`` that matches its Python name (else its first, alphabetically)."""
    names = sorted(name for name, registered in ATTACKS.items() if registered is function)
    return function.__name__ if function.__name__ in names else names[0]


def run(args: argparse.Namespace) -> int:
    """Attack every input against the source model(s); returns the exit code."""
    function = args.attack_function
    options = read_signature_flags(args, function, HANDLED, PIXEL_ARGUMENTS)
    _check(options, args)
    device = resolve_device(args.device)
    sources, outputs = plan(args)
    if not sources:
        return exit_codes.OK
    labels, targets = _labels(args, sources)
    models = load_models(args, device)
    model = models[0] if len(models) == 1 else models
    generator = torch.Generator().manual_seed(args.seed)
    takes_generator = "generator" in inspect.signature(function).parameters

    def transform(batch: torch.Tensor, indices: list[int], bar) -> torch.Tensor:
        y = None if labels is None else torch.tensor([labels[i] for i in indices], device=device)
        extra = {}
        if getattr(args, "targeted", False):
            extra["target"] = torch.tensor([targets[i] for i in indices], device=device) if targets else "random"
        if takes_generator:
            extra["generator"] = generator
        return function(model, batch, y, **options, **extra)

    def probe(batch: torch.Tensor) -> torch.Tensor:  # one step, own generator: the run's draws stay as they were
        extra = {"generator": torch.Generator().manual_seed(0)} if takes_generator else {}
        steps = {"steps": 1} if "steps" in inspect.signature(function).parameters else {}
        return function(model, batch, None, **{**options, **steps}, **extra)

    return process(sources, outputs, transform, args.batch_size, device, args.attack_name,
                   min_size=minimum_input_size(probe, device, gradients=True))


def _labels(args: argparse.Namespace, sources) -> tuple[list[int] | None, list[int] | None]:
    if args.labels and args.class_folders:
        raise InputError("give either --labels or --class-folders, not both")
    if args.class_folders:
        return folder_labels(sources), None
    if args.labels:
        labels, targets = read_labels_csv(args.labels, offset=args.label_offset)
        wanted_targets = getattr(args, "targeted", False) and targets
        return labels_for(sources, labels), labels_for(sources, targets, "target") if wanted_targets else None
    return None, None


def _check(options: dict, args: argparse.Namespace) -> None:
    """Refuse out-of-range values before anything is loaded; the attack itself checks the finer rules."""
    if args.eps is not None:
        check_pixel_budget("--eps", args.eps)
    if options.get("steps", 1) < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    for name, value in options.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name):g}")
    # iterative_attack's own checks of its static ranges, run here so that a bad flag exits with code 2, named,
    # rather than at the attack's first call, after the model has loaded.
    if "step_size" in options:
        check_pixel_budget("--step-size", args.step_size)
    for name, check, accepted in (
        ("diversity_prob", lambda value: check_probability(value, "diversity_prob"), "in [0, 1]"),
        ("diversity_scale", check_diversity_scale, "> 0 and != 1 (e.g. 0.9 or 330/299 = 1.1037)"),
        ("ti_kernel", check_kernel_size, "an odd integer >= 1"),
    ):
        if name in options:
            try:
                check(options[name])
            except InputError:
                raise UsageError(f"--{name.replace('_', '-')} must be {accepted}, got {getattr(args, name):g}") from None
