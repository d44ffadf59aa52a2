
import pytest
import torch

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.io import read_image
from nrp.purifiers import NRP, Purifier, load_network


def test_purify_mirrors_the_folder_skips_the_broken_file_and_reports_it(photos, tiny_purifier, tmp_path, capsys, fingerprint):
    before = fingerprint(photos)
    code = main(["purify", str(photos), "--out", str(tmp_path / "out"), "--weights", str(tiny_purifier), "--batch-size", "2"])
    assert code == exit_codes.SKIPPED
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == ["a.png", "b.png", "nested/c.png"]
    err = capsys.readouterr().err
    assert "skipped: cannot decode" in err and "broken.png" in err
    assert fingerprint(photos) == before


def test_purified_files_equal_the_purifier_applied_in_python(photos, tiny_purifier, tmp_path):
    main(["purify", str(photos / "a.png"), "--out", str(tmp_path / "out"), "--weights", str(tiny_purifier)])
    with torch.no_grad():
        expected = Purifier(load_network(tiny_purifier))(read_image(photos / "a.png")[None])[0]
    written = read_image(tmp_path / "out" / "a.png")
    assert (written - expected).abs().max() <= 0.5 / 255 + 1e-6


def test_a_plain_state_dict_like_the_authors_nrp_pth_needs_no_other_flag(photos, tmp_path):
    path = tmp_path / "NRP.pth"
    torch.save(NRP(width=8, blocks=2, growth=4).state_dict(), path)
    code = main(["purify", str(photos / "a.png"), "--out", str(tmp_path / "out"), "--weights", str(path)])
    assert code == exit_codes.OK
    assert (tmp_path / "out" / "a.png").is_file()


def test_dynamic_purification_is_random_but_reproducible_under_a_seed(photos, tiny_purifier, tmp_path):
    args = ["purify", str(photos / "a.png"), "--weights", str(tiny_purifier)]
    main(args + ["--out", str(tmp_path / "static")])
    main(args + ["--out", str(tmp_path / "d1"), "--dynamic", "--seed", "1"])
    main(args + ["--out", str(tmp_path / "d2"), "--dynamic", "--seed", "1"])
    main(args + ["--out", str(tmp_path / "d3"), "--dynamic", "--seed", "2"])
    read = lambda name: read_image(tmp_path / name / "a.png")
    assert torch.equal(read("d1"), read("d2"))
    assert not torch.equal(read("d1"), read("d3"))
    assert not torch.equal(read("d1"), read("static"))


def test_tiled_and_untiled_purification_agree(photos, tiny_purifier, tmp_path):
    args = ["purify", str(photos / "a.png"), "--weights", str(tiny_purifier)]
    main(args + ["--out", str(tmp_path / "whole"), "--tile", "0"])
    main(args + ["--out", str(tmp_path / "tiled"), "--tile", "8", "--tile-overlap", "40"])
    difference = read_image(tmp_path / "whole" / "a.png") - read_image(tmp_path / "tiled" / "a.png")
    assert difference.abs().max() <= 1 / 255 + 1e-6


def test_existing_outputs_are_kept_unless_overwrite_is_given(photos, tiny_purifier, tmp_path):
    out = tmp_path / "out"
    args = ["purify", str(photos / "a.png"), str(photos / "b.png"), "--out", str(out), "--weights", str(tiny_purifier)]
    main(args)
    (out / "a.png").write_bytes(b"marker")  # an earlier, interrupted run's output stands in place
    assert main(args) == exit_codes.OK
    assert (out / "a.png").read_bytes() == b"marker"
    main(args + ["--overwrite"])
    assert (out / "a.png").read_bytes() != b"marker"


def test_writing_into_the_input_folder_is_refused_and_changes_nothing(photos, tiny_purifier, capsys, fingerprint):
    before = fingerprint(photos)
    code = main(["purify", str(photos), "--out", str(photos), "--weights", str(tiny_purifier), "--overwrite"])
    assert code == exit_codes.ERROR
    assert "would overwrite input" in capsys.readouterr().err
    assert fingerprint(photos) == before


def test_without_weights_the_shipped_purifier_is_used(photos, tmp_path):
    from nrp.io.read import read_image
    from nrp.purifiers import Purifier, load_network, shipped_weights
    assert main(["purify", str(photos / "a.png"), "--out", str(tmp_path / "out")]) == exit_codes.OK
    purifier = Purifier(load_network(shipped_weights()))
    with torch.inference_mode():
        expected = purifier(read_image(photos / "a.png")[None])[0]
    assert (read_image(tmp_path / "out" / "a.png") - expected).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--weights", "missing.pth"], "weights file not found: missing.pth"),
        (["--weights", "{purifier}", "--purifier", "nrp_resg"], "holds a 'nrp' purifier, not 'nrp_resg'"),
        (["--weights", "{purifier}", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got '0'"),
        (["--weights", "{purifier}", "--tile", "-5"], "argument --tile/--tile-size: expected an integer >= 0, got '-5'"),
        (["--weights", "{purifier}", "--device", "tpu9"], "unknown device 'tpu9'"),
    ],
)
def test_bad_arguments_get_one_line_and_no_output(photos, tiny_purifier, tmp_path, capsys, extra, message):
    extra = [str(tiny_purifier) if item == "{purifier}" else item for item in extra]
    code = main(["purify", str(photos), "--out", str(tmp_path / "out")] + extra)
    err = capsys.readouterr().err
    assert code == (exit_codes.USAGE if "argument" in message else exit_codes.ERROR)
    assert message in err
    assert err.count("\n") == 1 and err.startswith("nrp: error: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_is_refused_before_any_work(photos, tiny_purifier, tmp_path, capsys):
    code = main(["purify", str(photos), "--out", str(tmp_path / "out"), "--weights", str(tiny_purifier), "--device", "cuda"])
    assert code == exit_codes.ERROR
    assert "CUDA is not available" in capsys.readouterr().err


def test_an_unknown_purifier_name_is_a_usage_error(photos, tiny_purifier, tmp_path, capsys):
    code = main(["purify", str(photos), "--out", str(tmp_path / "o"), "--weights", str(tiny_purifier), "--purifier", "unet"])
    assert code == exit_codes.USAGE
    assert "invalid choice: 'unet'" in capsys.readouterr().err


def test_missing_inputs_are_named(tiny_purifier, tmp_path, capsys):
    code = main(["purify", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--weights", str(tiny_purifier)])
    assert code == exit_codes.ERROR
    assert "nowhere" in capsys.readouterr().err


def test_missing_weights_are_refused_even_when_every_output_exists_and_kept_outputs_are_said(photos, tiny_purifier, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["purify", str(photos / "a.png"), str(photos / "b.png"), "--out", str(out)]
    assert main(args + ["--weights", str(tiny_purifier)]) == exit_codes.OK
    capsys.readouterr()
    assert main(args + ["--weights", str(tmp_path / "NRP.pth")]) == exit_codes.ERROR  # nothing to do, yet refused
    assert capsys.readouterr().err.strip() == f"nrp: error: weights file not found: {tmp_path / 'NRP.pth'}"
    assert main(args + ["--weights", str(tiny_purifier)]) == exit_codes.OK
    assert capsys.readouterr().out.strip() == f"2 of 2 outputs already exist in {out} and are kept (--overwrite redoes them)"
