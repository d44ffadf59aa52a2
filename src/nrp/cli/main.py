"""Entry point of the ``nrp`` command: parses arguments, runs a subcommand, turns errors into one line."""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

import nrp
from nrp.cli import attack, data, defend, demo, evaluate, exit_codes, purify, train
from nrp.cli.messages import error_line, printed_elsewhere
from nrp.errors import NRPError, UsageError


class Parser(argparse.ArgumentParser):
    """argparse whose errors are :class:`UsageError`: ``main`` prints them as one line and returns exit code 2.

    Subcommand parsers are of the same class, so ``nrp train --lr x`` reports the same way.
    """

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The full ``nrp`` argument parser."""
    parser = Parser(
        prog="nrp",
        description="Self-supervised adversarial robustness: purify images with a Neural Representation "
        "Purifier, attack them with the Self-supervised Perturbation, or train a purifier "
        "(Naseer et al., CVPR 2020).",
        epilog="Exit codes: 0 success, 1 error, 2 bad arguments, 3 some inputs skipped, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {nrp.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    purify.add_parser(subparsers)
    attack.add_parser(subparsers)
    defend.add_parser(subparsers)
    train.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    data.add_parser(subparsers)
    demo.add_parser(subparsers)
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of the deepest subcommand named in ``argv`` (``nrp attack ssp`` -> the ``ssp`` parser)."""
    for token in argv:
        choices = next((action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)), {})
        if token in choices:
            parser = choices[token]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nrp`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported with the usage of the subcommand they were given to, not the top level's
            subcommand_parser(parser, sys.argv[1:] if argv is None else argv).error(f"unrecognized arguments: {' '.join(unknown)}")
    except UsageError as error:
        print(f"nrp: error: {error}", file=sys.stderr)
        return exit_codes.USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="nrp: %(levelname)s: %(message)s",
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(printed_elsewhere)
    try:
        with logging_redirect_tqdm():
            return args.run(args)
    except NRPError as error:
        print(f"nrp: error: {error_line(worker_error(error), args)}", file=sys.stderr)
        return exit_codes.USAGE if isinstance(error, UsageError) else exit_codes.ERROR
    except OSError as error:  # anything the checks before the work could not foresee (disk full, permissions)
        where = f"{error.filename}: " if error.filename else ""
        print(f"nrp: error: {where}{error.strerror or error}", file=sys.stderr)
        return exit_codes.ERROR
    except KeyboardInterrupt:
        print("nrp: interrupted; outputs written so far are complete, run again to resume", file=sys.stderr)
        return exit_codes.INTERRUPTED


def worker_error(error: NRPError) -> NRPError:
    """``error``, or, when a DataLoader worker raised it, the same error with only the worker's own message.

    PyTorch re-raises a worker's exception in the main process with "Caught X in DataLoader worker process N.
    Original Traceback ..." and the whole traceback as its message; the last line holds ``module.X: message``.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in lines[0] + lines[1]:
        return type(error)(lines[-1].partition(": ")[2] or lines[-1])
    return error


if __name__ == "__main__":
    sys.exit(main())
