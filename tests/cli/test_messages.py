"""Messages that lead somewhere: every flag a message names exists on its command; offline is said at once."""

import argparse
import ast
import re
import time
from pathlib import Path

import pytest

import nrp
from nrp.cli import exit_codes
from nrp.cli.main import build_parser, main
from nrp.cli.messages import OFFLINE_BACKBONE, OFFLINE_LAYER
from nrp.errors import WeightsUnavailableError
from nrp.zoo import pretrained
from nrp.zoo.pretrained import hub_reachable, shorten, timm_pretrained_model

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SOURCE = Path(nrp.__file__).parent
# Options through which a command loads pretrained networks, so its missing-weights errors need a hint.
LOADS_WEIGHTS = {"--backbone", "--model", "--weights", "--fgsm-model"}


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every subcommand that runs something."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
    for action in subcommands:
        for name, child in action.choices.items():
            yield from leaf_parsers(child, (*path, name))


LEAVES = list(leaf_parsers(build_parser()))


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def optional_weight_sources(parser: argparse.ArgumentParser) -> set[str]:
    """Options through which the command may fall back to library caches (a required file cannot be missing weights)."""
    return {flag for action in parser._actions if not action.required for flag in action.option_strings} & LOADS_WEIGHTS


def test_the_walk_finds_every_command():
    commands = {" ".join(path) for path, _ in LEAVES}
    assert {"purify", "attack ssp", "attack fff", "attack mi_fgsm", "defend nrp", "train", "eval", "demo",
            "data offline"} <= commands


@pytest.mark.parametrize("path, parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_flag_in_a_commands_weights_hint_exists_on_that_command(path, parser):
    hint = parser.get_default("weights_hint")
    if hint is None:
        assert not optional_weight_sources(parser) and path != ("eval",), f"nrp {' '.join(path)} needs a weights_hint"
        return
    named = set(FLAG.findall(hint))
    assert named <= options(parser), f"nrp {' '.join(path)} names {sorted(named - options(parser))}, which it lacks"


def _message_strings(call: ast.Call, constants: dict[str, str]) -> list[str]:
    """The literal text of a raise's message: string pieces, f-string pieces and module constants it uses."""
    texts = []
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
        elif isinstance(node, ast.Name) and node.id in constants:
            texts.append(constants[node.id])
    return texts


def _module_constants(tree: ast.Module) -> dict[str, str]:
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants.update({target.id: node.value.value for target in node.targets if isinstance(target, ast.Name)})
    constants["HOW_TO_PROVIDE"] = pretrained.HOW_TO_PROVIDE
    return constants


LIBRARY = sorted(path for path in SOURCE.rglob("*.py") if "cli" not in path.relative_to(SOURCE).parts)


def test_no_library_missing_weights_message_names_a_flag():
    """The library cannot know the command (or that there is one): the command line adds its own flag."""
    found = 0
    for path in LIBRARY:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "WeightsUnavailableError":
                found += 1
                flags = [flag for text in _message_strings(node, constants) for flag in FLAG.findall(text)]
                assert not flags, f"{path.relative_to(SOURCE)}:{node.lineno} names {flags}"
    assert found >= 8  # the walk sees the messages (pretrained, sources, efficientnet_lite, detection, shipped)


def test_transfer_attack_names_its_own_weights_flag(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = main(["attack", "mi_fgsm", str(photos / "a.png"), "--out", str(tmp_path / "adv"), "--model", "resnet18",
                 "--no-download"])
    err = capsys.readouterr().err
    assert code == exit_codes.ERROR and err.count("\n") == 1
    assert "--model-weights FILE" in err and "--backbone-weights" not in err


def test_vgg16_error_offers_the_offline_backbone_and_that_advice_works(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = main(["attack", "ssp", str(photos / "a.png"), "--out", str(tmp_path / "adv"), "--no-download"])
    err = capsys.readouterr().err
    advice = f"--backbone {OFFLINE_BACKBONE} --layer {OFFLINE_LAYER}"
    assert code == exit_codes.ERROR and advice in err
    code = main(["attack", "ssp", str(photos / "a.png"), "--out", str(tmp_path / "adv"), "--steps", "1", *advice.split()])
    assert code == exit_codes.OK and (tmp_path / "adv" / "a.png").is_file()


def test_unknown_arguments_name_the_subcommand_in_one_line(photos, tmp_path, capsys):
    code = main(["attack", "ssp", str(photos), "--out", str(tmp_path / "adv"), "--no-such-flag"])
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE
    assert err == "nrp: error: unrecognized arguments: --no-such-flag (see nrp attack ssp --help)\n"


def test_offline_hub_fails_at_once_in_one_line_without_asking_the_hub(monkeypatch):
    from huggingface_hub import constants
    seen = []

    def create_model(name, pretrained):
        seen.append(constants.HF_HUB_OFFLINE)
        raise OSError("We cannot find the requested files in the local cache. Please check your connection")

    import timm
    monkeypatch.setattr(timm, "create_model", create_model)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda endpoint: False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(WeightsUnavailableError) as caught:
        timm_pretrained_model("inception_v3.tf_in1k")
    message = str(caught.value)
    assert seen == [True]  # the Hub client ran in its offline mode: the cache only, no retries
    assert constants.HF_HUB_OFFLINE is False  # and the switch is restored
    assert "out of reach (offline)" in message and "\n" not in message
    assert "timm.create_model('inception_v3.tf_in1k', pretrained=True)" in message


def test_hub_probe_is_quick_on_a_closed_port_and_defers_to_a_proxy(monkeypatch):
    for variable in pretrained.PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    start = time.monotonic()
    assert not hub_reachable("http://127.0.0.1:9", timeout=2.0)
    assert time.monotonic() - start < 2.5  # bounded by the timeout, not by retries
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub_reachable("http://127.0.0.1:9")


@pytest.mark.parametrize("length", [10, 30, 47, 80])
def test_shortened_reasons_end_on_a_whole_word(length):
    text = "An error happened while trying to locate the file on the Hub; please check your connection and try again"
    short = shorten(text, length)
    assert len(short) <= length
    assert short.endswith("…") and text.startswith(short[:-1]) and text[len(short) - 1] in " ;,"
    assert shorten("short", length) == "short"


def test_a_library_warning_with_its_own_handler_is_printed_once():
    import logging

    from nrp.cli.messages import printed_elsewhere
    library = logging.getLogger("some_library.sub")
    own = logging.StreamHandler()
    logging.getLogger("some_library").addHandler(own)
    try:
        assert not printed_elsewhere(library.makeRecord("some_library.sub", logging.WARNING, "f", 1, "twice?", (), None))
        assert printed_elsewhere(library.makeRecord("nrp", logging.WARNING, "f", 1, "once", (), None))
    finally:
        logging.getLogger("some_library").removeHandler(own)
