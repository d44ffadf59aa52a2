import io

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.io import read_image


def test_jpeg_through_the_command_line_equals_pillow(photos, tmp_path):
    assert main(["defend", "jpeg", str(photos / "a.png"), "--out", str(tmp_path / "out"), "--quality", "50"]) == exit_codes.OK
    buffer = io.BytesIO()
    Image.open(photos / "a.png").convert("RGB").save(buffer, format="JPEG", quality=50)
    expected = np.asarray(Image.open(buffer).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), expected)


def test_every_defense_in_the_registry_runs_from_the_command_line(photos, tiny_purifier, tmp_path):
    for name, extra in [("median", ["--window", "3"]), ("tvm", ["--weight", "30", "--steps", "3"]), ("bit_depth", []), ("gaussian", []),
                        ("random_resize_pad", []), ("jpeg_differentiable", []), ("nrp", ["--weights", str(tiny_purifier)]),
                        ("nrp_dynamic", ["--weights", str(tiny_purifier)])]:
        out = tmp_path / name
        assert main(["defend", name, str(photos / "a.png"), "--out", str(out), *extra]) == exit_codes.OK, name
        image = read_image(out / "a.png")
        assert image.min() >= 0 and image.max() <= 1


def test_random_defenses_are_reproducible_with_a_seed(photos, tmp_path):
    for run, seed in (("one", "3"), ("two", "3"), ("three", "4")):
        main(["defend", "random_resize_pad", str(photos / "a.png"), "--out", str(tmp_path / run), "--seed", seed])
    read = lambda run: read_image(tmp_path / run / "a.png")
    assert torch.equal(read("one"), read("two")) and not torch.equal(read("one"), read("three"))


@pytest.mark.parametrize(
    "args, message",
    [(["median", "--window", "4"], "window must be an odd integer >= 1, got 4"), (["jpeg", "--quality", "0"], "quality"),
     (["tvm", "--weight", "10", "--lamb", "0.1"], "either weight")],
)
def test_bad_parameters_are_refused_before_any_image_is_written(photos, tmp_path, capsys, args, message):
    code = main(["defend", args[0], str(photos), "--out", str(tmp_path / "out"), *args[1:]])
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_shipped_purifier_is_its_own_defense_and_nrp_without_weights_is_refused(photos, tmp_path):
    from nrp.io.read import read_image
    from nrp.purifiers import Purifier, load_network, shipped_weights
    assert main(["defend", "nrp", str(photos / "a.png"), "--out", str(tmp_path / "nrp")]) == exit_codes.USAGE
    assert main(["defend", "nrp_lite_shipped", str(photos / "a.png"), "--out", str(tmp_path / "out")]) == exit_codes.OK
    with torch.inference_mode():
        expected = Purifier(load_network(shipped_weights()))(read_image(photos / "a.png")[None])[0]
    assert (read_image(tmp_path / "out" / "a.png") - expected).abs().max() <= 0.5 / 255 + 1e-6
