import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.purifiers import load_network
from nrp.training.checkpointing import list_checkpoints


@pytest.fixture
def train_photos(tmp_path) -> Path:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


@pytest.fixture
def config_file(tmp_path, train_photos, vgg_weights) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({
        "data": [str(train_photos)], "purifier": "nrp_resg", "width": 4, "blocks": 1, "critic-width": 4,
        "iterations": 50, "batch_size": 2, "crop": 32, "resize": 40, "ssp_steps": 1, "layer": "conv1_1",
        "backbone_weights": str(vgg_weights), "workers": 0, "checkpoint_every": 1, "log_every": 1,
    }))
    return path


def test_flags_override_the_config_file_and_the_result_purifies(config_file, tmp_path, train_photos, capsys):
    run = tmp_path / "run"
    code = main(["train", "--config", str(config_file), "--out", str(run), "--iterations", "2"])
    assert code == exit_codes.OK
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iteration_00000001.pth", "iteration_00000002.pth"]
    saved = torch.load(run / "checkpoints" / "iteration_00000002.pth", weights_only=True)
    assert saved["config"]["iterations"] == 2 and saved["config"]["width"] == 4 and saved["config"]["critic_width"] == 4
    assert saved["architecture"] == "nrp_resg" and saved["arguments"] == {"width": 4, "blocks": 1}
    # The checkpoint goes straight into `nrp purify`.
    code = main(["purify", str(train_photos / "0.png"), "--out", str(tmp_path / "purified"), "--weights", str(run / "checkpoints" / "iteration_00000002.pth")])
    assert code == exit_codes.OK and (tmp_path / "purified" / "0.png").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--crop", "64"], "crop 64 is larger than resize 40"),
        (["--data", "{empty}"], "no images found"),
        (["--eps", "300"], "--eps must be a finite number in [0, 255], got 300.0"),
        (["--backbone", "vgg17"], "unknown backbone 'vgg17'"),
        (["--updates-per-batch", "0"], "--updates-per-batch must be an integer >= 1, got 0"),
        (["--max-cpu-seconds", "0"], "--max-cpu-seconds must be"),
    ],
)
def test_bad_configuration_is_one_line_before_any_iteration(config_file, tmp_path, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [str(tmp_path / "empty") if item == "{empty}" else item for item in extra]
    code = main(["train", "--config", str(config_file), "--out", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert code == (exit_codes.USAGE if extra[0] in ("--crop", "--eps", "--updates-per-batch", "--max-cpu-seconds") else exit_codes.ERROR)  # 2: bad arguments
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_config_keys_are_named(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": ["x"], "learning_rate": 0.1}))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == exit_codes.USAGE
    assert "unknown keys learning_rate" in capsys.readouterr().err


def test_a_process_killed_while_writing_a_checkpoint_leaves_nothing_resume_or_purify_would_pick(config_file, tmp_path):
    run = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        import nrp.checkpoints
        from nrp.cli.main import main
        real_save = torch.save
        def dying_save(obj, f, *args, **kwargs):
            if obj.get("iteration") == 3:
                with open(f, "wb") as handle:
                    handle.write(b"PK\\x03\\x04half a checkpoint")
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, f, *args, **kwargs)
        nrp.checkpoints.torch.save = dying_save
        main(["train", "--config", {str(config_file)!r}, "--out", {str(run)!r}, "--iterations", "5"])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (run / "checkpoints").iterdir()]
    assert any(name.endswith(".tmp") for name in leftovers)  # the half-written file really was there
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iteration_00000001.pth", "iteration_00000002.pth"]
    load_network(run / "checkpoints" / "iteration_00000002.pth")
    assert main(["train", "--config", str(config_file), "--out", str(run), "--iterations", "4", "--resume"]) == exit_codes.OK
    assert list_checkpoints(run / "checkpoints")[-1].name == "iteration_00000004.pth"
