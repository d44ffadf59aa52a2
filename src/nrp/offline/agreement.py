"""A second evaluation set, labelled by the agreement of three classifiers on photos from a Debian package.

The 20 labelled foolbox photos make every accuracy a multiple of 5 points. Debian's ``gcompris-qt-data``
(GPL-3+, photos under per-file CC licences; ``apt-get install --no-install-recommends gcompris-qt-data``)
holds a few hundred real photos as WebP images inside Qt resource bundles,
``/usr/share/gcompris-qt/rcc/<activity>.rcc``. The recipe:

1. carves every ``RIFF....WEBP`` chunk out of the bundles of the activities that show photos
   (:data:`PHOTO_BUNDLES`; the others hold drawings), and drops the known paintings (:data:`NOT_PHOTOS`);
2. keeps images whose short side is at least ``min_side`` pixels;
3. drops near-duplicates among them (the larger copy is kept) and any picture also among the reference
   photos (the foolbox, training and validation photos, and the registry training photos of
   ``--training-photos`` when they are laid out), with the recipe's overlap test
   (:func:`nrp.offline.thumbnails.same_picture`);
4. classifies each at 224x224 exactly as ``nrp demo`` feeds images (short side resized to 224, centre crop,
   8-bit quantised) with EfficientNet-Lite0, EfficientNet-Lite1 and MobileNetV2 (:data:`AGREEMENT_MODELS`), and
   keeps those where all three give the same top-1 class, which becomes the label;
5. keeps at most ``cap`` of them: the first in order of the SHA-256 of their WebP data.

The labelling networks are the demo's non-target ones (the purifier's training network and the two attack
sources): under the paper's disjoint protocol the black-box target, EfficientNet-Lite2, must neither pick nor
label the photos it is scored on, so its clean accuracy here is a measurement, not 100% by construction.

The labels are the models' agreement, not a person's: an image all three get consistently wrong (a solar
panel called "solar dish") keeps the wrong label, and the set leans towards images these models find easy.
Accuracies on it are therefore relative to those models' clean answers, and clean accuracy is 100% for each
of the three by construction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.offline.thumbnails import same_picture, thumbnail, thumbnail_of

logger = logging.getLogger(__name__)

GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc")
GCOMPRIS_INSTALL = "apt-get install --no-install-recommends gcompris-qt-data"
# Activities whose images are photos; the other bundles hold drawings, icons and sounds.
PHOTO_BUNDLES = ("categorization", "details", "erase", "explore_farm_animals", "explore_monuments",
                 "explore_world_animals")
# SHA-256 of the WebP images in those bundles that are paintings, not photos: the eight Van Gogh paintings of
# "details" (found by looking at its 21 images of at least 200 px; the other bundles hold no paintings).
NOT_PHOTOS = frozenset({
    "5dc91d4230a20c5e488149b3b624a1acd023309b11acb08e89af19745965e96c",
    "865df5627716d3175d8350d6a98f63de866827de12e03c2def785aaa4098a65a",
    "53f7fae4fb52354272b6596acbff439f1b851029a16f0bbdf94d8cd727de49f4",
    "ce4d535bc04fb59a177873a1b3ed7a2edeb81af82ede5e28d85fad82533ba33b",
    "45f038919ae8216a927d35cd6766c6a99cbb622873185c5fb0af615f1525caf6",
    "cd41f9e0ad142148fc4dbb86bd98641cd56c7be95b650131066aaaa3e1d52957",
    "6605f1dd5519ecd1e66220343dd27c3873f72a52b4c91f041e80c698554b9093",
    "ddc28715a60a357f9f887df332d49dbdc5815b1fd1fbe8343035861a84938cdd",
})
# The labelling networks: the purifier's training network and the two attack sources, never the black-box
# target (EfficientNet-Lite2), which must not choose or label the photos it is scored on.
AGREEMENT_MODELS = ("efficientnet-lite0", "efficientnet-lite1", "mobilenet_v2")
IMAGE_SIZE = 224
MIN_SIDE = 200
DEFAULT_CAP = 100
PREDICTIONS = "predictions.json"

Classifier = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BundleImage:
    """One WebP image carved out of a Qt resource bundle."""

    bundle: str
    offset: int
    data: bytes

    @property
    def name(self) -> str:
        """``<activity>_<byte offset>``: unique within a package version."""
        return f"{Path(self.bundle).stem}_{self.offset}"

    @property
    def sha256(self) -> str:
        """SHA-256 of the WebP data (the same whatever bundle or offset it sits at)."""
        return hashlib.sha256(self.data).hexdigest()

    def decode(self) -> Image.Image:
        """The image in RGB, with its EXIF orientation applied (alpha is dropped, as ``read_image`` does)."""
        with Image.open(io.BytesIO(self.data)) as image:
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")


@dataclass(frozen=True)
class AgreedImage:
    """An image all the classifiers put in the same class: its label and each model's top-1 prediction."""

    source: BundleImage
    image: Image.Image
    label: int
    predictions: dict[str, int]


def carve_webp(data: bytes) -> list[tuple[int, bytes]]:
    """``(offset, bytes)`` of every complete ``RIFF<size>WEBP`` chunk in ``data`` (a bundle's raw bytes)."""
    chunks = []
    start = data.find(b"RIFF")
    while start >= 0:
        if data[start + 8:start + 12] == b"WEBP":
            end = start + 8 + struct.unpack("<I", data[start + 4:start + 8])[0]
            if end <= len(data):
                chunks.append((start, data[start:end]))
                start = data.find(b"RIFF", end)
                continue
        start = data.find(b"RIFF", start + 1)
    return chunks


def bundle_images(rcc_folder: str | Path = GCOMPRIS_RCC, bundles: Sequence[str] = PHOTO_BUNDLES) -> list[BundleImage]:
    """Every WebP image in the ``<bundle>.rcc`` files of ``rcc_folder`` (a missing bundle is skipped)."""
    images = []
    for bundle in bundles:
        path = Path(rcc_folder) / f"{bundle}.rcc"
        if not path.is_file():
            logger.warning("%s is missing: its photos are skipped", path)
            continue
        images += [BundleImage(path.name, offset, chunk) for offset, chunk in carve_webp(path.read_bytes())]
    return images


def select_agreement(candidates: Iterable[BundleImage], references: Iterable[Path],
                     classify: Callable[[Image.Image], dict[str, int]], cap: int = DEFAULT_CAP,
                     min_side: int = MIN_SIDE) -> list[AgreedImage]:
    """The candidates that pass the filters of the module's steps 1-5, in order of bundle and offset.

    Args:
        candidates: carved images.
        references: image files the set must not share a picture with.
        classify: an RGB image -> each model's top-1 class (:func:`zoo_classify` for the real models).
        cap: the most images kept.
        min_side: the smallest short side kept, in pixels.
    """
    if cap < 1 or min_side < 1:
        raise InputError(f"cap and min_side must be at least 1, got {cap} and {min_side}")
    counts = dict.fromkeys(("carved", "not a photo", "undecodable", "too small", "duplicate", "overlap", "disagree"), 0)
    decoded: list[tuple[BundleImage, Image.Image]] = []
    for source in candidates:
        counts["carved"] += 1
        if source.sha256 in NOT_PHOTOS:
            counts["not a photo"] += 1
            continue
        try:
            image = source.decode()
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
            logger.warning("cannot decode %s: %s", source.name, error)
            counts["undecodable"] += 1
            continue
        if min(image.size) < min_side:
            counts["too small"] += 1
            continue
        decoded.append((source, image))
    # Of two copies of a picture the larger is kept; ties go to the first by bundle and offset, for a stable choice.
    decoded.sort(key=lambda pair: (-pair[1].width * pair[1].height, pair[0].bundle, pair[0].offset))
    reference_thumbnails = [thumbnail_of(path) for path in references]
    kept: list[tuple[BundleImage, Image.Image, np.ndarray]] = []
    for source, image in decoded:
        small = thumbnail(image)
        if any(same_picture(small, other) for _, _, other in kept):
            counts["duplicate"] += 1
        elif any(same_picture(small, other) for other in reference_thumbnails):
            counts["overlap"] += 1
        else:
            kept.append((source, image, small))
    agreed = []
    for source, image, _ in sorted(kept, key=lambda entry: entry[0].sha256):
        if len(agreed) == cap:
            break
        predictions = classify(image)
        if len(set(predictions.values())) == 1:
            agreed.append(AgreedImage(source, image, next(iter(predictions.values())), predictions))
        else:
            counts["disagree"] += 1
    logger.info("agreement set: %s; %d kept (cap %d)", ", ".join(f"{k} {v}" for k, v in counts.items()), len(agreed), cap)
    return sorted(agreed, key=lambda entry: (entry.source.bundle, entry.source.offset))


def demo_input(image: Image.Image) -> torch.Tensor:
    """An RGB image as ``nrp demo`` feeds it: ``(1, 3, 224, 224)`` in [0, 1], short side resized, centre-cropped."""
    from nrp.eval.datasets import resize_square
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / np.float32(255)).permute(2, 0, 1)
    return resize_square(pixels, IMAGE_SIZE)[None]


def zoo_classify(classifiers: Mapping[str, Classifier] | None = None,
                 cache: dict[str, dict[str, int]] | None = None,
                 names: Sequence[str] = AGREEMENT_MODELS) -> Callable[[Image.Image], dict[str, int]]:
    """An RGB image -> ``{model name: top-1 class}`` of each classifier on :func:`demo_input`.

    Args:
        classifiers: name -> ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, classes)``; default: the zoo's
            models ``names``, each built on first use.
        cache: ``{model name: {SHA-256 of the decoded pixels: class}}``, read and filled in place, so a re-run
            classifies only new images.
        names: the zoo models used when ``classifiers`` is not given.
    """
    names = list(classifiers) if classifiers is not None else list(names)
    built: dict[str, Classifier] = dict(classifiers or {})
    cache = cache if cache is not None else {}

    def classify(image: Image.Image) -> dict[str, int]:
        key = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        missing = [name for name in names if key not in cache.get(name, {})]
        if missing:
            pixels = demo_input(image)
            for name in missing:
                if name not in built:
                    from nrp.zoo import create_model
                    built[name] = create_model(name)
                with torch.no_grad():
                    cache.setdefault(name, {})[key] = int(built[name](pixels).argmax(1)[0])
        return {name: cache[name][key] for name in names}

    return classify


def build_agreement_set(root: Path, images: Path, labels: Path, references: Iterable[Path],
                        rcc_folder: str | Path = GCOMPRIS_RCC, cap: int = DEFAULT_CAP, min_side: int = MIN_SIDE,
                        classifiers: Mapping[str, Classifier] | None = None) -> list[dict] | None:
    """Write the agreement set as PNGs in ``images`` and ``filename,label`` rows in ``labels``; return manifest records.

    Record paths are relative to ``root``. The predictions are cached in ``images.parent / predictions.json``;
    PNGs already written are kept and PNGs no longer selected are removed. Returns ``None``, with a warning
    naming the package to install, when ``rcc_folder`` does not exist.
    """
    rcc_folder = Path(rcc_folder)
    if not rcc_folder.is_dir():
        logger.warning("the agreement evaluation set is skipped: its photos ship in Debian's gcompris-qt-data "
                       "(%s is missing): %s", rcc_folder, GCOMPRIS_INSTALL)
        return None
    cache_path = images.parent / PREDICTIONS
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    selected = select_agreement(bundle_images(rcc_folder), references, zoo_classify(classifiers, cache), cap, min_side)
    with atomic_path(cache_path) as tmp:
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    images.mkdir(parents=True, exist_ok=True)
    names = {f"{entry.source.name}.png" for entry in selected}
    for stale in images.iterdir():
        if stale.name not in names:
            stale.unlink()
    records = []
    for entry in selected:
        target = images / f"{entry.source.name}.png"
        if not target.exists():
            with atomic_path(target) as tmp:
                entry.image.save(tmp, format="PNG")
        records.append({"file": str(target.relative_to(root)), "source": "gcompris-qt-data",
                        "bundle": entry.source.bundle, "offset": entry.source.offset, "source_sha256": entry.source.sha256,
                        "label": str(entry.label), "predictions": entry.predictions,
                        "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
    with atomic_path(labels) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows((f"{entry.source.name}.png", entry.label) for entry in selected)
    return records
