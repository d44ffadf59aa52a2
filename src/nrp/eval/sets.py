"""The one store of image sets that both evaluation protocols use: planning, seeded batches, atomic PNGs, resume.

A set is the clean images or one (source, attack, eps) combination. Its images are stored as 8-bit PNG files
``ROOT/sets/<relative>/<stem>.png``, where ``ROOT`` is the run folder for the classification protocol and
``RUN/cross_task`` for the cross-task one, and ``relative`` is ``<source>/<attack>/eps<eps>`` for the
classification protocol's sets, ``<attack>/eps<eps>`` for the cross-task protocol's and ``clean`` for the clean
images (labels percent-encoded, :func:`~nrp.eval.artefacts.folder_name`). The results made from a set
(predictions, scores) sit under the same ``relative`` path. The set's record (:mod:`nrp.eval.records`) is
fingerprinted: ``fingerprint.json`` is written before the first image and ``manifest.json`` after the last
(:func:`~nrp.eval.artefacts.open_set_folder`), so a set with a manifest of the current fingerprint is complete,
an interrupted one keeps its finished batches (a batch whose files all exist is not made again), and one stored
under another fingerprint is remade (or refused, ``stale: refuse``).

What differs between the protocols is passed in, not copied: the record, the batching (batches of
``batch_size`` images of one size, or one image at a time for images that keep their own sizes) and the
function that makes a batch (:class:`~nrp.eval.crafting.Crafter`: an attack told the labels, or a label-free
one; the classification protocol's clean images are the originals resized). Every batch draws its random
numbers from a generator seeded by (run seed, set, batch number), or by (run seed, set, image stem) for
one-image batches, so a resumed, sharded or subset run stores exactly the images of one uninterrupted run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from nrp.distributed import DistributedContext, barrier
from nrp.eval.artefacts import close_set_folder, folder_name, open_set_folder
from nrp.eval.components import CDA, CLEAN, CROSS_TASK, LABEL_FREE_ATTACKS, PRECOMPUTED, SSP_DEFAULTS, Component
from nrp.eval.datasets import batch_ranges
from nrp.eval.progress import ProgressFactory, silent_progress
from nrp.fingerprint import fingerprint
from nrp.io.write import write_image

logger = logging.getLogger(__name__)

STORED_PNG_COMPRESSION = 1  # lossless either way; level 1 writes several times faster than the default 6

BatchMaker = Callable[[range, torch.Generator], torch.Tensor]
"""``make(positions, generator) -> (B, 3, H, W)`` in [0, 1]: the images of one batch (``positions`` index the stems)."""


@dataclass(frozen=True)
class ImageSet:
    """One set of images of either protocol: the clean images (``attack`` is ``None``) or one (source, attack, eps).

    Args:
        source: what the set is crafted on (a classifier, an ensemble ``a+b``, a feature extractor
            ``vgg16:conv3_3``, ``precomputed``); ``clean`` for the classification protocol's clean images and
            ``cross_task`` for every set of the cross-task protocol.
        attack: the attack, ``None`` for the clean images.
        eps: the L-inf budget in 0-255 units (0 for the clean images).
        root: the store; the set's images lie in ``root/sets/relative``.
        relative: the set's place under ``sets/`` and under the folders of what is computed from it.
        record: everything that shaped the set (:mod:`nrp.eval.records`); its fingerprint keys the stored files.
        originals: ``{stem: file}`` for images read in place instead of stored (the cross-task protocol's clean
            images keep their own files and sizes).
    """

    source: str
    attack: Component | None
    eps: float
    root: Path
    relative: Path
    record: dict[str, Any] = field(default_factory=dict, compare=False)
    originals: Mapping[str, Path] | None = field(default=None, compare=False)

    @property
    def attack_label(self) -> str:
        """The attack's display label, ``clean`` for the clean images."""
        return CLEAN if self.attack is None else self.attack.label

    @property
    def key(self) -> str:
        """``source/attack/eps``: the set's identity in logs, records and seeds."""
        return f"{self.source}/{self.attack_label}/{self.eps:g}"

    @property
    def folder(self) -> Path:
        """Where the set's images, ``fingerprint.json`` and ``manifest.json`` are stored."""
        return self.root / "sets" / self.relative

    def paths(self, stems: Sequence[str]) -> list[Path]:
        """Where each image of the set is read from: its stored PNG, or its own file when read in place."""
        if self.originals is not None:
            return [self.originals[stem] for stem in stems]
        return [self.folder / f"{stem}.png" for stem in stems]

    @property
    def fingerprint(self) -> str:
        """The fingerprint of :attr:`record`: everything that shaped the set."""
        return fingerprint(self.record)

    def attack_record(self) -> dict[str, Any]:
        """The attack as plain values (name, parameters, label), for the set's record."""
        if self.attack is None:
            return {}
        return {"name": self.attack.name, "params": self.attack.params, "label": self.attack.label}


def plan_sets(root: Path, attacks: Sequence[Component], eps_values: Sequence[float],
              sources: Sequence[str] | None = None) -> list[ImageSet]:
    """The sets of an experiment, for every attack and eps (in that order), without records.

    Args:
        root: the store (the run folder, or ``RUN/cross_task``).
        attacks: the experiment's attacks.
        eps_values: budgets, 0-255 units.
        sources: the classifiers transfer attacks are crafted on (classification protocol): a set per source
            under ``sets/<source>/<attack>/eps<eps>``, a label-free attack once per eps under its feature
            extractor (:func:`attack_source`). ``None`` (cross-task protocol, label-free attacks only): one set
            per (attack, eps) under ``sets/<attack>/eps<eps>``, its source ``cross_task``.
    """
    sets = []
    for attack in attacks:
        for eps in eps_values:
            if sources is None:
                sets.append(ImageSet(CROSS_TASK, attack, eps, root, Path(folder_name(attack.label)) / f"eps{eps:g}"))
                continue
            for source in [attack_source(attack)] if attack.name in LABEL_FREE_ATTACKS else sources:
                relative = Path(folder_name(source)) / folder_name(attack.label) / f"eps{eps:g}"
                sets.append(ImageSet(source, attack, eps, root, relative))
    return sets


def clean_set(root: Path, source: str = CLEAN, originals: Mapping[str, Path] | None = None) -> ImageSet:
    """The clean images every attack starts from: stored under ``sets/clean``, or read in place (``originals``)."""
    return ImageSet(source, None, 0.0, root, Path(CLEAN), originals=originals)


def attack_source(attack: Component) -> str:
    """The source named in reports for a label-free attack: its feature extractor (``vgg16:conv3_3``),
    ``precomputed`` for images made elsewhere, ``cda:<generator file stem>`` for CDA's generator."""
    if attack.name == PRECOMPUTED:
        return PRECOMPUTED
    if attack.name == CDA:
        return f"cda:{Path(attack.params['weights']).stem}"
    params = {**SSP_DEFAULTS, **attack.params}
    size = params.get("input_size")
    return f"{params['backbone']}:{params['layer']}" + ("" if size is None else f"@{size}")


def batch_generator(seed: int, key: str, batch_number: int) -> torch.Generator:
    """A CPU generator seeded from the run seed, a key (the set, ...) and the batch number (not the process count)."""
    digest = hashlib.sha256(f"{seed}/{key}/{batch_number}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def set_batches(image_set: ImageSet, stems: Sequence[str], seed: int, batch_size: int | None, rank: int = 0,
                world: int = 1) -> Iterator[tuple[range, torch.Generator]]:
    """``(positions, generator)`` of the batches of ``image_set`` that process ``rank`` of ``world`` makes.

    ``batch_size``: batch k holds positions ``[k*B, (k+1)*B)`` (images of one size) and draws from
    ``batch_generator(seed, set key, k)``; ``None``: one image per batch, drawing from a generator keyed by the
    image's stem, so an image gets the same draws whatever the other images of the run.
    """
    if batch_size is None:
        for _, positions in batch_ranges(len(stems), 1, rank, world):
            yield positions, batch_generator(seed, f"{image_set.key}/{stems[positions[0]]}", 0)
        return
    for number, positions in batch_ranges(len(stems), batch_size, rank, world):
        yield positions, batch_generator(seed, image_set.key, number)


def store_set(
    image_set: ImageSet,
    stems: Sequence[str],
    build: Callable[[], BatchMaker],
    seed: int,
    batch_size: int | None,
    context: DistributedContext = DistributedContext(),
    progress: ProgressFactory = silent_progress,
    policy: str = "recompute",
    description: str | None = None,
) -> None:
    """Make and store every missing batch of ``image_set`` (each file atomically), then its manifest.

    A set complete under its fingerprint is left alone; one stored under another record is cleared and remade
    (logged), or refused with ``policy="refuse"`` (:class:`~nrp.eval.artefacts.StaleArtefactError`).
    ``build`` gives the batch maker; it is called on the first missing batch only, so a set that only lost its
    manifest needs no model. Under ``torchrun`` each process makes its share of the batches (:func:`set_batches`):
    rank 0 clears a stale set before any rank writes and writes the manifest after every rank has finished.

    Args:
        image_set: a stored set (not one read in place) with its record.
        stems: the images' names; image ``i`` is stored as ``<stem>.png``.
        build: ``() -> make(positions, generator)`` (:data:`BatchMaker`).
        seed: the run seed.
        batch_size: images per batch, ``None`` for one image at a time (see :func:`set_batches`).
        context: this process's rank and world size.
        progress: progress-bar factory; the stage is ``description`` (default ``craft <set key>``).
        policy: ``recompute`` or ``refuse`` a stale set.
    """
    if _open(image_set, context, policy):
        return
    paths = image_set.paths(stems)
    make: BatchMaker | None = None
    with progress(description or f"craft {image_set.key}", len(stems)) as bar:
        for positions, generator in set_batches(image_set, stems, seed, batch_size, context.rank, context.world_size):
            if not all(paths[i].is_file() for i in positions):
                make = make or build()
                for i, image in zip(positions, make(positions, generator).cpu()):
                    write_image(image, paths[i], png_compression=STORED_PNG_COMPRESSION)
            bar.update(len(positions))
    barrier(context)
    if context.is_main:
        close_set_folder(image_set.folder, image_set.record, source=image_set.source, attack=image_set.attack_label,
                         eps=image_set.eps, images=len(stems))
        logger.info("stored set %s (%d images)", image_set.key, len(stems))
    barrier(context)


def _open(image_set: ImageSet, context: DistributedContext, policy: str) -> bool:
    """Whether the set is complete under its fingerprint; rank 0 clears a stale one before any rank writes (and
    notes its own thread count)."""
    complete = None
    if context.is_main:
        complete = open_set_folder(image_set.folder, image_set.record, f"set {image_set.key}", policy,
                                   threads=torch.get_num_threads())
    if context.distributed:
        shared = [complete]
        dist.broadcast_object_list(shared, src=0)
        complete = shared[0]
    return bool(complete)
