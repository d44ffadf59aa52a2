"""``nrp data offline``: lay out the real photos that install from package registries (the offline benchmark)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nrp.cli import exit_codes
from nrp.offline import default_cache, prepare_offline
from nrp.offline.recipe import OPENCV_DATA


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp data`` and its ``offline`` recipe."""
    parser = subparsers.add_parser("data", help="prepare datasets", description="Prepare datasets for training and evaluation.")
    recipes = parser.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    offline = recipes.add_parser(
        "offline",
        help="photos from PyPI/Debian packages: 20 labelled ImageNet photos + unlabelled training photos",
        description="Copy the 20 labelled ImageNet photos of the foolbox wheel (evaluation), and the colour photos "
        "of scikit-image, scikit-learn and Debian's opencv-doc (training, 4 held out for validation) into a cache "
        "folder, with a manifest of SHA-256 sums; refuses if a training photo equals an evaluation photo. "
        "Install the sources with: pip install 'nrp-purifier[demo]' (and apt-get install opencv-doc).",
    )
    offline.add_argument("--cache", type=Path, default=None, help=f"cache folder (default $NRP_CACHE or {default_cache()})")
    offline.add_argument("--opencv-data", type=Path, default=OPENCV_DATA, help=f"OpenCV example data folder (default {OPENCV_DATA})")
    offline.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the offline cache and print where each part went."""
    layout = prepare_offline(args.cache, opencv_data=args.opencv_data)
    print(f"evaluation photos: {layout.eval_images} (labels {layout.eval_labels})")
    print(f"training photos:   {layout.train_images}")
    print(f"validation photos: {layout.val_images}")
    return exit_codes.OK
