"""Property-based tests (hypothesis) of the command line's numeric flags: a run or one clear line, never a traceback.

Flag values are drawn from integers far outside any range, floats including NaN and infinities, and junk
text; every command either runs (exit 0, or 3 when inputs were skipped) or refuses with exactly one
``nrp: error:`` line (2 for a bad argument, 1 for a runtime failure). Example counts are kept small so the
suite stays fast; the total number of examples is the sum of the ``max_examples`` settings below.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nrp.cli.main import main
from nrp.validation import COUNT, FRACTION, NON_NEGATIVE_INT, PIXELS, POSITIVE, SEED, Range

# Text a user (or a script gone wrong) may pass as a number.
NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "0x10", "", " ", "1,5", "½", "1_000", "--1", "True"]),
    st.text(max_size=8),
)
QUICK = settings(max_examples=200, deadline=None, derandomize=True)
CLI = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


@QUICK
@given(text=NUMBER_TEXT, bounds=st.sampled_from([SEED, COUNT, NON_NEGATIVE_INT, PIXELS, POSITIVE, FRACTION]))
def test_a_range_returns_an_accepted_value_or_refuses_naming_the_text(text: str, bounds: Range):
    try:
        value = bounds(text)
    except argparse.ArgumentTypeError as error:
        assert f"got '{text}'" in str(error) and bounds.describe() in str(error)
        return
    assert isinstance(value, bounds.kind) and math.isfinite(value) and bounds.accepts(value)
    if bounds.minimum is not None:
        assert value >= bounds.minimum
    if bounds.maximum is not None:
        assert value <= bounds.maximum


def outcome(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_run_or_one_line(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("nrp: error: ")]
    if code in (0, 3):
        assert not errors, err
    else:
        assert code in (1, 2) and len(errors) == 1, (code, err)


@pytest.fixture(scope="module")
def one_image(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("one")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


PURIFY_FLAGS = ["--seed", "--batch-size", "--tile", "--tile-overlap"]
DEFEND_FLAGS = {"gaussian": ["--sigma", "--kernel-size"], "median": ["--window"], "jpeg": ["--quality"],
                "bit_depth": ["--bits"], "random_resize_pad": ["--seed"]}


@CLI
@given(flags=st.dictionaries(st.sampled_from(PURIFY_FLAGS), NUMBER_TEXT, min_size=1, max_size=3))
def test_purify_flags(one_image, tiny_purifier, flags):
    out = tempfile.mkdtemp()
    argv = ["purify", str(one_image), "--out", out, "--weights", str(tiny_purifier), "--overwrite"]
    for flag, value in flags.items():
        argv += [f"{flag}={value}"]
    assert_run_or_one_line(*outcome(argv))


@CLI
@given(defense=st.sampled_from(sorted(DEFEND_FLAGS)), data=st.data())
def test_defend_flags(one_image, defense, data):
    flags = data.draw(st.dictionaries(st.sampled_from(DEFEND_FLAGS[defense]), NUMBER_TEXT, min_size=1))
    argv = ["defend", defense, str(one_image), "--out", tempfile.mkdtemp()]
    for flag, value in flags.items():
        argv += [f"{flag}={value}"]
    assert_run_or_one_line(*outcome(argv))


@CLI
@given(flags=st.dictionaries(st.sampled_from(["--eps", "--steps", "--step-size", "--seed"]), NUMBER_TEXT, min_size=1))
def test_ssp_flags(one_image, vgg_weights, flags):
    argv = ["attack", "ssp", str(one_image), "--out", tempfile.mkdtemp(), "--backbone-weights", str(vgg_weights),
            "--layer", "conv1_1"]
    flags.setdefault("--steps", "1")
    if flags["--steps"].strip().isascii() and flags["--steps"].strip().isdigit() and int(flags["--steps"]) > 2:
        flags["--steps"] = "2"  # valid step counts stay cheap
    for flag, value in flags.items():
        argv += [f"{flag}={value}"]
    assert_run_or_one_line(*outcome(argv))


TRAIN_FLAGS = ["--lr", "--critic-lr", "--width", "--blocks", "--critic-width", "--crop", "--seed", "--eps",
               "--ssp-step-size", "--ssp-steps", "--noise-std", "--clean-fraction", "--batch-size", "--workers",
               "--keep-checkpoints", "--val-images", "--betas", "--loss-weights"]


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(flags=st.dictionaries(st.sampled_from(TRAIN_FLAGS), NUMBER_TEXT, min_size=1, max_size=3))
def test_train_flags(train_config, flags):
    argv = ["train", "--config", str(train_config), "--out", tempfile.mkdtemp(), "--iterations", "1"]
    for flag, value in flags.items():
        if flag in ("--width", "--blocks", "--critic-width", "--batch-size", "--workers", "--ssp-steps",
                    "--val-images", "--keep-checkpoints") and value.strip().isascii() and value.strip().isdigit():
            value = str(min(int(value), 4))  # valid sizes and step counts stay tiny, so a valid run is cheap
        if flag == "--crop" and value.strip().isascii() and value.strip().isdigit():
            value = str(min(int(value), 40))
        argv += [f"{flag}={value}"]
    assert_run_or_one_line(*outcome(argv))
