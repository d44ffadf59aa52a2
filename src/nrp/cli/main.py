"""Entry point of the ``nrp`` command: parses arguments, runs a subcommand, turns errors into one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

import nrp
from nrp.cli import attack, data, defend, demo, evaluate, exit_codes, purify, train
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nrp`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="nrp: %(levelname)s: %(message)s",
        force=True,
    )
    try:
        with logging_redirect_tqdm():
            return args.run(args)
    except NRPError as error:
        print(f"nrp: error: {error}", file=sys.stderr)
        return exit_codes.ERROR
    except KeyboardInterrupt:
        print("nrp: interrupted; outputs written so far are complete, run again to resume", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
