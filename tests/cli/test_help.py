"""``--help`` says what every flag does, in plain text, and one knob has one name across commands."""

import argparse
import re

import pytest

from nrp.cli.flag_help import parameter_help, plain_text
from nrp.cli.main import build_parser
from nrp.purifiers import PURIFIERS

from .test_messages import LEAVES

# Help that only restates the default, or says nothing about the flag.
EMPTY = re.compile(r"^\s*(optional|required|default: [^ ]+)?\s*$")


@pytest.mark.parametrize("path, parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_flag_says_what_it_does_in_plain_text(path, parser):
    assert parser.description and "``" not in parser.description and ":func:" not in parser.description
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and not EMPTY.match(action.help), f"nrp {' '.join(path)} {name}: {action.help!r}"
        assert "``" not in action.help and ":func:" not in action.help, f"nrp {' '.join(path)} {name}: {action.help!r}"


def test_attack_list_is_plain_text_and_states_aliases():
    parser = build_parser()
    attack = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["attack"]
    listing = attack.format_help()
    assert "``" not in listing
    attacks = next(a for a in attack._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in attacks._choices_actions}
    assert helps["mi_dim_ti_fgsm"].startswith("alias of dim_ti_fgsm: ")
    assert not helps["dim_ti_fgsm"].startswith("alias")


def test_tile_has_one_name_in_purify_and_defend():
    parser = build_parser()
    for command in (["purify", "x", "--out", "y"], ["defend", "nrp", "x", "--out", "y"]):
        by_tile = parser.parse_args([*command, "--tile", "128"])
        by_tile_size = parser.parse_args([*command, "--tile-size", "128"])
        dest = "tile" if command[0] == "purify" else "tile_size"
        assert getattr(by_tile, dest) == getattr(by_tile_size, dest) == 128


def flag_help(path: tuple[str, ...], flag: str) -> str:
    parser = dict(LEAVES)[path]
    return " ".join(next(a for a in parser._actions if flag in a.option_strings).help.split())


def test_purifier_flags_name_every_registered_architecture_and_its_defaults():
    assert all(name in flag_help(("defend", "nrp"), "--architecture") for name in PURIFIERS)
    width, blocks = flag_help(("train",), "--width"), flag_help(("train",), "--blocks")
    assert all(name in width and name in blocks for name in PURIFIERS)
    assert "48 for nrp_ms" in width and "2 for nrp_ms" in blocks and "23 for nrp, nrp_resg" in blocks


def test_parameter_help_falls_back_to_the_docstring_without_markup():
    def attack(x, knob: float = 1.0, other: int = 2):
        """An attack.

        Args:
            x: images.
            knob: how far to turn the ``knob``, see
                :func:`~nrp.attacks.fgsm`.
        """

    assert parameter_help(attack, "knob") == "how far to turn the knob, see fgsm"
    assert parameter_help(attack, "other") is None
    assert parameter_help(attack, "eps") == "L-inf budget of the perturbation"  # the table wins
    assert plain_text("``a``\n  b") == "a b"


def test_a_tensor_only_parameter_gets_no_flag_and_the_others_do():
    # ILA's baseline is adversarial images, which only Python can pass; a flag for it would parse a float.
    parser = build_parser()
    attack = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["attack"]
    ila = next(a for a in attack._actions if isinstance(a, argparse._SubParsersAction)).choices["ila"]
    flags = {flag for action in ila._actions for flag in action.option_strings}
    assert "--baseline" not in flags
    assert {"--layer", "--ila-steps", "--momentum", "--steps"} <= flags
