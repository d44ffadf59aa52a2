from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from nrp.attacks import get_attack
from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.io import read_image
from nrp.zoo import create_model


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "squeezenet1_1.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.fixture
def classes(tmp_path) -> Path:
    """A folder-per-class layout with a labels CSV beside it."""
    rng = np.random.default_rng(0)
    root = tmp_path / "classes"
    for name in ("ant", "bee"):
        (root / name).mkdir(parents=True)
        for index in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / name / f"{name}{index}.png")
    (tmp_path / "labels.csv").write_text("image,label,target\nant0.png,5,7\nant1.png,5,8\nbee0.png,9,1\nbee1.png,9,2\n")
    return root


def attack(args, squeezenet, out) -> int:
    return main(["attack", *args, "--out", str(out), "--model", "squeezenet1_1", "--model-weights", str(squeezenet)])


def test_mi_fgsm_output_equals_the_python_function_with_the_csv_labels(classes, squeezenet, tmp_path):
    code = attack(["mi_fgsm", str(classes), "--labels", str(tmp_path / "labels.csv"), "--steps", "3", "--batch-size", "4"], squeezenet, tmp_path / "adv")
    assert code == exit_codes.OK
    model = create_model("squeezenet1_1", weights=squeezenet)  # the zoo's classifier: resize/crop and normalisation inside
    x = torch.stack([read_image(classes / "ant" / "ant0.png"), read_image(classes / "ant" / "ant1.png")])
    expected = get_attack("mi_fgsm")(model, x, torch.tensor([5, 5]), steps=3)
    written = read_image(tmp_path / "adv" / "ant" / "ant0.png")
    assert (written - expected[0]).abs().max() <= 0.5 / 255 + 1e-6
    assert (written - x[0]).abs().max() <= 3 * 1.6 / 255 + 0.5 / 255 + 1e-6


def test_an_ensemble_and_class_folders_and_targets(classes, squeezenet, tmp_path):
    code = main(["attack", "pgd", str(classes), "--out", str(tmp_path / "adv"), "--model", "squeezenet1_1,squeezenet1_1",
                 "--model-weights", f"{squeezenet},{squeezenet}", "--class-folders", "--targeted", "--steps", "2", "--eps", "8"])
    assert code == exit_codes.OK
    clean, adversarial = read_image(classes / "bee" / "bee1.png"), read_image(tmp_path / "adv" / "bee" / "bee1.png")
    assert 0 < (adversarial - clean).abs().max() <= 8 / 255 + 1e-6


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--eps", "300"], "--eps must be in [0, 255] pixel units, got 300"),
        (["--eps", "nan"], "argument --eps: expected a finite number, got 'nan'"),
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--step-size", "-1"], "--step-size must be >= 0"),
        (["--labels", "{csv}", "--class-folders"], "either --labels or --class-folders"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(classes, squeezenet, tmp_path, capsys, extra, message):
    extra = [str(tmp_path / "labels.csv") if item == "{csv}" else item for item in extra]
    code = attack(["i_fgsm", str(classes), *extra], squeezenet, tmp_path / "adv")
    err = capsys.readouterr().err
    assert code == (exit_codes.ERROR if "either" in message else exit_codes.USAGE)
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "adv").exists()


@pytest.mark.parametrize(
    "name, flag, value, message",
    [
        ("mi_dim_ti_fgsm", "--ti-kernel", "4", "--ti-kernel must be an odd integer >= 1, got 4"),
        ("mi_dim_ti_fgsm", "--ti-kernel", "0", "--ti-kernel must be an odd integer >= 1, got 0"),
        ("dim", "--diversity-prob", "2", "--diversity-prob must be in [0, 1], got 2"),
        ("dim", "--diversity-scale", "1", "--diversity-scale must be > 0 and != 1"),
        ("dim", "--diversity-scale", "0", "--diversity-scale must be > 0 and != 1"),
        ("i_fgsm", "--step-size", "300", "--step-size must be in [0, 255] pixel units, got 300"),
    ],
)
def test_out_of_range_attack_options_exit_2_naming_the_flag_before_the_model_loads(
    classes, tmp_path, capsys, name, flag, value, message
):
    # A model weights file that does not exist: reaching the model would be a different error.
    code = attack([name, str(classes), flag, value], tmp_path / "absent.pth", tmp_path / "adv")
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE, err
    assert message in err and err.count("\n") == 1, err
    assert "input size" not in err
    assert not (tmp_path / "adv").exists()


def test_an_unknown_layer_is_named_not_reported_as_an_input_size_failure(classes, squeezenet, tmp_path, capsys):
    code = attack(["fia", str(classes), "--layer", "nope", "--steps", "1", "--ensemble", "1"], squeezenet, tmp_path / "adv")
    err = capsys.readouterr().err
    assert code == exit_codes.ERROR, err
    assert "model has no layer 'nope'; its layers include: network" in err and err.count("\n") == 1, err
    assert "input size" not in err


def test_an_image_missing_from_the_labels_file_is_named(classes, squeezenet, tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("image,label\nant0.png,5\n")
    code = attack(["fgsm", str(classes), "--labels", str(tmp_path / "labels.csv")], squeezenet, tmp_path / "adv")
    assert code == exit_codes.ERROR
    assert "no label for" in capsys.readouterr().err


def test_every_registered_transfer_attack_has_a_command(capsys):
    with pytest.raises(SystemExit):
        main(["attack", "--help"])
    listed = capsys.readouterr().out
    for name in ("fgsm", "r_fgsm", "i_fgsm", "pgd", "mi_fgsm", "dim", "ti_fgsm", "mi_ti_fgsm", "dim_ti_fgsm", "mi_dim_ti_fgsm", "ssp"):
        assert f"    {name}" in listed


def test_fff_crafts_one_perturbation_saves_it_and_applies_it_to_every_image(classes, vgg16_weights, tmp_path):
    weights = str(vgg16_weights(4))
    common = ["--backbone-weights", weights, "--layers", "conv1_1,conv1_2", "--iterations", "3", "--size", "32", "--eps", "10"]
    assert main(["attack", "fff", str(classes), "--out", str(tmp_path / "first"), *common]) == exit_codes.OK
    saved = tmp_path / "first" / "fff_perturbation.safetensors"
    assert saved.is_file()
    deltas = [read_image(tmp_path / "first" / name) - read_image(classes / name) for name in ("ant/ant0.png", "bee/bee1.png")]
    assert all(delta.abs().max() <= 10 / 255 + 0.5 / 255 + 1e-6 for delta in deltas)
    # Reusing the saved perturbation reproduces the outputs exactly, with no backbone at all.
    assert main(["attack", "fff", str(classes), "--out", str(tmp_path / "again"), "--perturbation", str(saved), "--eps", "10"]) == exit_codes.OK
    assert torch.equal(read_image(tmp_path / "again" / "ant" / "ant0.png"), read_image(tmp_path / "first" / "ant" / "ant0.png"))


def test_fff_needs_layers_for_a_backbone_without_vgg_features(classes, tmp_path, capsys):
    code = main(["attack", "fff", str(classes), "--out", str(tmp_path / "out"), "--backbone", "resnet18", "--iterations", "1"])
    assert code == exit_codes.ERROR and "--layers" in capsys.readouterr().err


def test_fia_takes_its_layer_from_the_command_line(classes, squeezenet, tmp_path, capsys):
    out = tmp_path / "adv"
    assert attack(["fia", str(classes), "--steps", "2", "--ensemble", "2"], squeezenet, out) == exit_codes.USAGE
    assert "the following arguments are required: --layer" in capsys.readouterr().err
    args = ["fia", str(classes), "--steps", "2", "--ensemble", "2", "--layer", "network.features.3", "--eps", "4"]
    assert attack(args, squeezenet, out) == exit_codes.OK
    clean, adversarial = read_image(classes / "ant" / "ant0.png"), read_image(out / "ant" / "ant0.png")
    assert 0 < (adversarial - clean).abs().max() <= 4 / 255 + 1e-6
