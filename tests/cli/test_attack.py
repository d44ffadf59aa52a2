from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nrp.cli import exit_codes
from nrp.cli.main import main


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def run_ssp(inputs, out, weights, *extra) -> int:
    return main(["attack", "ssp", *map(str, inputs), "--out", str(out), "--backbone-weights", str(weights), "--steps", "3", *extra])


def test_ssp_outputs_stay_within_eps_pixels_and_mirror_the_folder(photos, vgg_weights, tmp_path, fingerprint):
    before = fingerprint(photos)
    code = run_ssp([photos], tmp_path / "adv", vgg_weights, "--eps", "8")
    assert code == exit_codes.SKIPPED  # the broken file
    assert fingerprint(photos) == before
    for name, source in [("a.png", "a.png"), ("nested/c.png", "nested/c.jpg")]:
        clean = np.asarray(Image.open(photos / source).convert("RGB"), dtype=np.int16)
        adversarial = pixels(tmp_path / "adv" / name)
        assert np.abs(adversarial - clean).max() == 8  # the first projection puts pixels on the boundary


def test_ssp_is_reproducible_with_a_seed(photos, vgg_weights, tmp_path):
    for name, seed in (("s1", "1"), ("s1again", "1"), ("s2", "2")):
        run_ssp([photos / "a.png"], tmp_path / name, vgg_weights, "--seed", seed)
    assert np.array_equal(pixels(tmp_path / "s1" / "a.png"), pixels(tmp_path / "s1again" / "a.png"))
    assert not np.array_equal(pixels(tmp_path / "s1" / "a.png"), pixels(tmp_path / "s2" / "a.png"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--eps", "300"], "argument --eps: expected a finite number in [0, 255], got '300'"),
        (["--eps", "-1"], "argument --eps: expected a finite number in [0, 255], got '-1'"),
        (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
        (["--step-size", "0"], "argument --step-size: expected a finite number > 0, got '0'"),
        (["--step-size", "nan"], "argument --step-size: expected a finite number > 0, got 'nan'"),
        (["--backbone", "vgg17"], "unknown backbone 'vgg17'"),
        (["--layer", "conv9_9"], "unknown layer 'conv9_9' of vgg16"),
    ],
)
def test_out_of_range_arguments_are_refused_before_any_work(photos, vgg_weights, tmp_path, capsys, extra, message):
    code = run_ssp([photos], tmp_path / "adv", vgg_weights, *extra)
    err = capsys.readouterr().err
    assert code == (exit_codes.USAGE if "argument" in message else exit_codes.ERROR)
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "adv").exists()


def test_missing_backbone_weights_name_the_file_and_the_flag(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = main(["attack", "ssp", str(photos / "a.png"), "--out", str(tmp_path / "adv"), "--no-download"])
    err = capsys.readouterr().err
    assert code == exit_codes.ERROR
    assert "vgg16-397923af.pth" in err and "--backbone-weights" in err
    assert "Traceback" not in err


def test_ssp_reference_crops_to_224_and_refuses_the_flags_it_fixes(tmp_path, vgg_weights, capsys, monkeypatch):
    import torch

    import nrp.cli.attack as command

    # 100 steps of VGG16 at 224 take minutes on a CPU: a one-layer extractor keeps the test fast.
    monkeypatch.setattr(command, "build_feature_extractor", lambda *a, **k: torch.nn.Conv2d(3, 4, 3).requires_grad_(False))
    rng = np.random.default_rng(1)
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (256, 300, 3), dtype=np.uint8)).save(folder / "p.png")
    base = ["attack", "ssp", str(folder), "--backbone-weights", str(vgg_weights), "--reference"]
    code = main([*base, "--out", str(tmp_path / "refused"), "--steps", "3"])
    err = capsys.readouterr().err
    assert code == exit_codes.ERROR and "--reference fixes the authors' settings; drop --steps" in err
    assert not (tmp_path / "refused").exists()
    assert main([*base, "--out", str(tmp_path / "adv")]) == exit_codes.OK
    assert pixels(tmp_path / "adv" / "p.png").shape == (224, 224, 3)


def test_cda_runs_a_saved_generator_within_eps(photos, tmp_path, capsys):
    import torch

    from nrp.attacks import CDAGenerator, cda, load_cda_generator
    from nrp.io import read_image

    torch.manual_seed(0)
    weights = tmp_path / "cda.pth"
    torch.save(CDAGenerator().state_dict(), weights)
    code = main(["attack", "cda", str(photos / "a.png"), "--out", str(tmp_path / "adv"), "--weights", str(weights), "--eps", "8"])
    assert code == exit_codes.OK
    clean = read_image(photos / "a.png")  # 20x24: multiples of 4
    written = read_image(tmp_path / "adv" / "a.png")
    expected = cda(clean[None], load_cda_generator(weights), eps=8 / 255)[0]
    assert (written - expected).abs().max() <= 0.5 / 255 + 1e-6
    assert np.abs(pixels(tmp_path / "adv" / "a.png") - pixels(photos / "a.png")).max() == 8
    code = main(["attack", "cda", str(photos / "a.png"), "--out", str(tmp_path / "bad"), "--weights", str(tmp_path / "none.pth")])
    err = capsys.readouterr().err
    assert code == exit_codes.ERROR and "weights file not found" in err and err.count("\n") == 1
