"""Crafting each adversarial set once and storing it as PNG files with a manifest, so runs resume.

A set is one (source, attack, eps) combination. Its images go to ``RUN/sets/<source>/<attack>/eps<eps>/`` under
the clean images' names (folder names percent-encoded, :func:`~nrp.eval.artefacts.folder_name`). The set's
record (:mod:`nrp.eval.records`) is fingerprinted: ``fingerprint.json`` is written before the first image and
``manifest.json`` after the last, so a set with a manifest of the current fingerprint is complete and one of
another fingerprint is recomputed (:func:`~nrp.eval.artefacts.open_set_folder`). An interrupted set keeps its
finished batches: a batch whose files all exist is not crafted again. Every batch draws its random numbers from a generator seeded by (run seed, set, batch
number), so a resumed or sharded run stores exactly the images a single uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nrp.attacks import cda, load_cda_generator, ssp
from nrp.attacks.fff import apply_universal, fff, vgg_activations
from nrp.attacks.registry import get_attack
from nrp.errors import InputError
from nrp.eval.artefacts import close_set_folder, folder_name
from nrp.eval.components import CLEAN, LABEL_FREE_ATTACKS, PRECOMPUTED, SSP_DEFAULTS, SSP_MODEL_KEYS, Component
from nrp.eval.datasets import read_batch
from nrp.eval.models import ModelBank
from nrp.features import build_backbone
from nrp.fingerprint import fingerprint
from nrp.io.discover import IMAGE_SUFFIXES
from nrp.io.write import write_image

logger = logging.getLogger(__name__)

STORED_PNG_COMPRESSION = 1  # lossless either way; level 1 writes several times faster than the default 6
CDA = "cda"  # CDA's generator run here: {name: cda, weights: FILE, inception: bool}


@dataclass(frozen=True)
class AdversarialSet:
    """One stored image set: the clean images (``attack`` is ``clean``) or one (source, attack, eps)."""

    source: str
    attack: Component | None
    eps: float
    folder: Path
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def attack_label(self) -> str:
        """The attack's display label, ``clean`` for the clean set."""
        return CLEAN if self.attack is None else self.attack.label

    @property
    def key(self) -> str:
        """``source/attack/eps`` — the set's identity in reports and seeds."""
        return f"{self.source}/{self.attack_label}/{self.eps:g}"

    def paths(self, stems: list[str]) -> list[Path]:
        """Where each image of the set is stored."""
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


def plan_sets(run_dir: Path, sources: list[str], attacks: list[Component], eps_values: list[float]) -> list[AdversarialSet]:
    """The sets an experiment needs: label-free attacks once per eps, the others once per source and eps."""
    sets = []
    for attack in attacks:
        for eps in eps_values:
            attack_sources = [attack_source(attack)] if attack.name in LABEL_FREE_ATTACKS else sources
            for source in attack_sources:
                folder = run_dir / "sets" / folder_name(source) / folder_name(attack.label) / f"eps{eps:g}"
                sets.append(AdversarialSet(source, attack, eps, folder))
    return sets


def clean_set(run_dir: Path) -> AdversarialSet:
    """The resized, 8-bit clean images every attack starts from."""
    return AdversarialSet(CLEAN, None, 0.0, run_dir / "sets" / CLEAN)


def attack_source(attack: Component) -> str:
    """The source named in reports: the feature extractor of a label-free attack (``vgg16:conv3_3``), or
    ``precomputed`` for images made elsewhere."""
    if attack.name == PRECOMPUTED:
        return PRECOMPUTED
    if attack.name == CDA:
        return f"cda:{Path(attack.params['weights']).stem}"
    params = {**SSP_DEFAULTS, **attack.params}
    return f"{params['backbone']}:{params['layer']}"


def batch_generator(seed: int, key: str, batch_number: int) -> torch.Generator:
    """A CPU generator seeded from the run seed, the set and the batch number (independent of process count)."""
    digest = hashlib.sha256(f"{seed}/{key}/{batch_number}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class Crafter:
    """Runs one set's attack on batches of clean images.

    Args:
        models: the shared :class:`ModelBank`.
        image_shape: ``(3, H, W)`` of the clean images (FFF's universal perturbation has this shape).
        seed: the run seed.
    """

    def __init__(self, models: ModelBank, image_shape: tuple[int, int, int], seed: int) -> None:
        self.models = models
        self.image_shape = image_shape
        self.seed = seed
        self.universal: dict[str, torch.Tensor] = {}

    def attack(self, adversarial_set: AdversarialSet, stems: list[str]) -> Callable[..., torch.Tensor]:
        """``run(x, labels, targets, generator, positions) -> x_adv`` for ``adversarial_set``.

        ``positions`` are the batch's places in ``stems``; a ``precomputed`` attack reads
        ``<folder>/<stem>.png`` (any image suffix), resized like the clean images and clipped into the eps ball.
        """
        attack = adversarial_set.attack
        eps = adversarial_set.eps / 255
        params = dict(attack.params)
        if attack.name == PRECOMPUTED:
            return self._precomputed(Path(params["folder"]), stems, eps)
        if attack.name == "ssp":
            extractor = self._extractor(params)
            return lambda x, y, t, g, positions: ssp(x, extractor, eps=eps, generator=g, **params)
        if attack.name == "fff":
            return lambda x, y, t, g, positions: apply_universal(x, self._universal(adversarial_set, params))
        if attack.name == CDA:
            network = load_cda_generator(params["weights"], params.get("inception", False), self.models.device)
            return lambda x, y, t, g, positions: cda(x, network, eps=eps)
        function = get_attack(attack.name)
        model = self.models.classifier(adversarial_set.source)
        use_dataset_targets = params.get("target") == "dataset"
        if use_dataset_targets:
            params.pop("target")

        def run(x: torch.Tensor, y: torch.Tensor | None, t: torch.Tensor | None, g: torch.Generator, positions: range) -> torch.Tensor:
            extra = dict(params)
            if use_dataset_targets:
                if t is None:
                    raise InputError(f"attack {attack.label} asks for the dataset's target classes, but the images have none")
                extra["target"] = t
            return function(model, x, y, eps=eps, generator=g, **extra)

        return run

    def _precomputed(self, folder: Path, stems: list[str], eps: float) -> Callable[..., torch.Tensor]:

        def find(stem: str) -> Path:
            for suffix in IMAGE_SUFFIXES:
                if (folder / f"{stem}{suffix}").is_file():
                    return folder / f"{stem}{suffix}"
            raise InputError(f"precomputed adversarial image for '{stem}' not found in {folder}")

        def run(x: torch.Tensor, y, t, g, positions: range) -> torch.Tensor:
            stored = read_batch([find(stems[i]) for i in positions], x.shape[-1]).to(x.device)
            return torch.minimum(torch.maximum(stored, x - eps), x + eps).clamp(0, 1)

        return run

    def _extractor(self, params: dict[str, Any]) -> torch.nn.Module:
        settings = {**SSP_DEFAULTS, **{key: params.pop(key) for key in SSP_MODEL_KEYS if key in params}}
        return self.models.feature_extractor(settings["backbone"], settings["layer"], settings.get("backbone_weights"))

    def _universal(self, adversarial_set: AdversarialSet, params: dict[str, Any]) -> torch.Tensor:
        if adversarial_set.key not in self.universal:
            extractor = self._extractor_layers(params)
            generator = batch_generator(self.seed, adversarial_set.key, 0)
            self.universal[adversarial_set.key] = fff(extractor, self.image_shape, eps=adversarial_set.eps / 255,
                                                      generator=generator, **params)
        return self.universal[adversarial_set.key]

    def _extractor_layers(self, params: dict[str, Any]) -> torch.nn.Module:
        backbone = params.pop("backbone", "vgg16")
        model, mean, std = build_backbone(backbone, params.pop("backbone_weights", None) or self.models.weights.get(backbone))
        return vgg_activations(model.to(self.models.device), params.pop("layers", None), mean, std)


def write_set(adversarial_set: AdversarialSet, stems: list[str], positions: range, images: torch.Tensor) -> None:
    """Store one batch of a set (each file atomically)."""
    for position, image in zip(positions, images):
        write_image(image, adversarial_set.folder / f"{stems[position]}.png", png_compression=STORED_PNG_COMPRESSION)


def finish_set(adversarial_set: AdversarialSet, count: int) -> None:
    """Write the manifest that marks a set complete."""
    close_set_folder(adversarial_set.folder, adversarial_set.record, source=adversarial_set.source,
                     attack=adversarial_set.attack_label, eps=adversarial_set.eps, images=count)
