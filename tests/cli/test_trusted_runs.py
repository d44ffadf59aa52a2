"""Issue 17, cases 3-7 through the command line: no stale, mixed or silently corrupted numbers.

Each test reproduces a case that used to end with wrong results and exit code 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.training.checkpointing import list_checkpoints

SRC = Path(__file__).resolve().parents[2] / "src"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("nrp: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- case 3: labels keyed by relative path -------------------------------------------------------------


class MeanClassifier(torch.nn.Module):
    """Class 0 for dark images, class 1 for bright ones: an attack's gradient direction depends on the label."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3))[:, None]
        return torch.cat([(0.5 - mean) * 20, (mean - 0.5) * 20, torch.zeros(x.shape[0], 998)], dim=1)


def test_attack_labels_follow_the_relative_path_not_the_stem(tmp_path, monkeypatch):
    """``cat/00.png,0`` and ``dog/00.png,1``: FGSM must push each image away from its own label."""
    folder = tmp_path / "images"
    for name in ("cat", "dog"):
        (folder / name).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(folder / name / "00.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\ncat/00.png,0\ndog/00.png,1\n")
    model_file = tmp_path / "mean.pt"
    torch.jit.script(MeanClassifier()).save(str(model_file))
    out = tmp_path / "adv"
    code = main(["attack", "fgsm", str(folder), "--out", str(out), "--model", str(model_file), "--labels", str(labels),
                 "--eps", "8"])
    assert code == exit_codes.OK
    mean = lambda name: np.asarray(Image.open(out / name / "00.png"), dtype=np.float64).mean()
    # Away from class 0 (dark) is brighter; away from class 1 (bright) is darker.
    assert mean("cat") == pytest.approx(136, abs=0.01) and mean("dog") == pytest.approx(120, abs=0.01)


# --- case 4: a damaged newest checkpoint ---------------------------------------------------------------


def flip_bytes(path: Path, count: int = 200) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))


def test_resume_refuses_a_damaged_newest_checkpoint_and_offers_the_intact_one(train_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(train_config), "--out", str(run)]) == exit_codes.OK
    first, second = list_checkpoints(run / "checkpoints")
    flip_bytes(second)
    capsys.readouterr()
    code = main(["train", "--config", str(train_config), "--out", str(run), "--iterations", "3", "--resume"])
    line = one_error_line(capsys)
    assert code == exit_codes.ERROR
    assert f"{second} is damaged" in line and f"the newest intact checkpoint is {first.name}" in line
    assert "--resume-intact" in line and second.is_file()  # nothing changed yet
    code = main(["train", "--config", str(train_config), "--out", str(run), "--iterations", "3", "--resume",
                 "--resume-intact"])
    assert code == exit_codes.OK
    assert second.with_name(second.name + ".damaged").is_file()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [first.name, second.name, "iteration_00000003.pth"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["iteration"] for r in records if "iteration" in r][-2:] == [2, 3]  # iteration 2 redone after 1


def test_resume_with_another_width_names_the_difference(train_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(train_config), "--out", str(run)]) == exit_codes.OK
    capsys.readouterr()
    code = main(["train", "--config", str(train_config), "--out", str(run), "--resume", "--width", "8"])
    assert code == exit_codes.USAGE
    assert f"--width 8 differs from the run's 4 in {run}; pass --width 4, or start a new --out" in one_error_line(capsys)


# --- case 5: NaN and infinity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ssp-step-size", "nan"], "--ssp-step-size must be a finite number > 0, got nan"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
        (["--critic-lr", "inf"], "--critic-lr must be a finite number > 0, got inf"),
        (["--perturbation", "gaussian", "--noise-std", "inf"], "--noise-std must be a finite number >= 0, got inf"),
        (["--loss-weights", "nan,1,1"], "--loss-weights must be a finite number >= 0, got nan"),
        (["--width", "0"], "--width must be an integer >= 1, got 0"),
        (["--width", "-1"], "--width must be an integer >= 1, got -1"),
        (["--crop", "16"], "--crop must be at least 32 (the critic halves it five times), got 16"),
        (["--seed", "99999999999999999999999"], "--seed must be an integer in [0, 9223372036854775807]"),
    ],
)
def test_bad_numbers_are_refused_before_the_run_folder_exists(train_config, tmp_path, capsys, extra, message):
    run = tmp_path / "run"
    code = main(["train", "--config", str(train_config), "--out", str(run), *extra])
    assert code == exit_codes.USAGE
    assert message in one_error_line(capsys)
    assert not run.exists()


def test_a_nan_in_the_config_file_is_named_by_its_key(train_config, tmp_path, capsys):
    train_config.write_text(train_config.read_text() + "lr: .nan\n")
    code = main(["train", "--config", str(train_config), "--out", str(tmp_path / "run")])
    assert code == exit_codes.USAGE
    assert f"{train_config}: lr must be a finite number > 0, got nan" in one_error_line(capsys)


# --- case 6: one writer per run folder -----------------------------------------------------------------


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / "run"`` until the test ends."""
    run = tmp_path / "run"
    script = ("import sys, time\nfrom nrp.run_lock import run_folder_lock\n"
              "with run_folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "held"
    yield run, process
    process.kill()
    process.wait()


def test_a_second_train_into_one_folder_is_refused_naming_the_first_pid(train_config, holder, capsys):
    run, process = holder
    code = main(["train", "--config", str(train_config), "--out", str(run)])
    assert code == exit_codes.ERROR
    assert f"{run} is in use by another nrp process (PID {process.pid})" in one_error_line(capsys)
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    process.kill()
    process.wait()  # the kernel drops a dead process's lock: the folder is free again
    assert main(["train", "--config", str(train_config), "--out", str(run)]) == exit_codes.OK


def test_a_second_eval_into_one_folder_is_refused(holder, tmp_path, capsys):
    run, process = holder
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    config = tmp_path / "eval.yaml"
    config.write_text(f"images: {images}\nout: {run}\ntargets: [resnet18]\nattacks: [fgsm]\nsources: [resnet18]\n")
    assert main(["eval", str(config)]) == exit_codes.ERROR
    assert f"(PID {process.pid})" in one_error_line(capsys)
    assert sorted(path.name for path in run.iterdir()) == [".nrp.lock"]


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    from nrp.run_lock import run_folder_lock

    with run_folder_lock(tmp_path / "run") as lock:
        assert lock.read_text().strip() == str(os.getpid())
    with run_folder_lock(tmp_path / "run"):
        pass


# --- case 7: an output folder inside the input folder ----------------------------------------------------


def test_purify_into_a_folder_inside_its_input_resumes(photos, tiny_purifier, capsys):
    out = photos / "purified"
    args = ["purify", str(photos), "--out", str(out), "--weights", str(tiny_purifier)]
    assert main(args) == exit_codes.SKIPPED  # photos holds one broken file
    written = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert written == [Path("a.png"), Path("b.png"), Path("nested/c.png")]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert main(args) == exit_codes.SKIPPED
    assert "would overwrite input" not in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before  # nothing redone, nothing added


def test_eval_into_a_folder_inside_its_images_resumes_with_the_same_rows(tmp_path):
    from nrp.eval.config import EvalConfig
    from nrp.eval.experiment_file import check_config
    from nrp.eval.run import run_evaluation

    images = tmp_path / "images"
    for label, level in enumerate((30, 220)):
        (images / f"class{label}").mkdir(parents=True)
        for index in range(2):
            Image.fromarray(np.full((12, 12, 3), level + index, np.uint8)).save(images / f"class{label}" / f"{index}.png")
    config = EvalConfig(images=str(images), image_size=12, out=str(images / "run"), sources=["mean"],
                        attacks=["fgsm"], eps=[8], defenses=["none"], targets=["mean"], batch_size=2, grid_images=0)
    check_config(config)
    models = {"mean": MeanClassifier()}
    first = json.loads(run_evaluation(config, models)["json"].read_text())["rows"]
    second = json.loads(run_evaluation(config, models)["json"].read_text())["rows"]
    assert first == second and [row["images"] for row in first] == [4, 4]  # the run's own PNGs never count
    assert len(list((images / "run" / "sets" / "clean").rglob("*.png"))) == 4
