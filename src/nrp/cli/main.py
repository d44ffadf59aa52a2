"""Entry point of the ``nrp`` command: parses arguments, runs a subcommand, turns errors into one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

import nrp
from nrp.cli import attack, data, defend, demo, evaluate, exit_codes, purify, train
from nrp.cli.messages import error_line
from nrp.errors import NRPError


def build_parser() -> argparse.ArgumentParser:
    """The full ``nrp`` argument parser."""
    parser = argparse.ArgumentParser(
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
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported with the usage of the subcommand they were given to, not the top level's
        subcommand_parser(parser, sys.argv[1:] if argv is None else argv).error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="nrp: %(levelname)s: %(message)s",
        force=True,
    )
    try:
        with logging_redirect_tqdm():
            return args.run(args)
    except NRPError as error:
        print(f"nrp: error: {error_line(error, args)}", file=sys.stderr)
        return exit_codes.ERROR
    except KeyboardInterrupt:
        print("nrp: interrupted; outputs written so far are complete, run again to resume", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
