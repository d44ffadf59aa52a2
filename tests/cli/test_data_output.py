"""``nrp data offline`` prints only what it laid out, and its warnings name what would add the rest."""

import sys

import numpy as np
from PIL import Image

from nrp.cli.main import main
from nrp.offline import recipe


def test_missing_sources_are_not_printed_and_their_warnings_name_the_fix(tmp_path, monkeypatch, capsys):
    foolbox = tmp_path / "site" / "foolbox"
    (foolbox / "data").mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 120, dtype=np.uint8)).save(foolbox / "data" / "imagenet_00_281.jpg")
    monkeypatch.setattr(recipe, "_package_folder", lambda name: foolbox if name == "foolbox" else None)
    for module in ("skimage", "sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, module, None)  # not installed
    code = main(["data", "offline", "--cache", str(tmp_path / "cache"), "--opencv-data", str(tmp_path / "no-opencv"),
                 "--gcompris-rcc", str(tmp_path / "no-gcompris")])
    captured = capsys.readouterr()
    assert code == 0
    assert "evaluation photos:" in captured.out
    assert "training photos" not in captured.out and "validation photos" not in captured.out  # nothing laid out
    for line in ("scikit-image is not installed", "scikit-learn is not installed"):
        warning = next(w for w in captured.err.splitlines() if line in w)
        assert "pip install 'nrp-purifier[offline]'" in warning
    assert "apt-get install --no-install-recommends opencv-doc" in captured.err
    assert "apt-get install --no-install-recommends gcompris-qt-data" in captured.err
