"""Making the images of an adversarial set, for both protocols: an attack run on the set's clean images.

:class:`Crafter` turns a planned :class:`~nrp.eval.sets.ImageSet` into the batch maker the store runs
(:func:`~nrp.eval.sets.store_set`) and into the identity of what the set is crafted on (for its record). What
the attack needs from the protocol is passed in: the labels and target classes of the classification
protocol, nothing for the cross-task protocol's label-free attacks. Clean images of one square size
(classification, ``image_size``) are attacked in batches; images of their own sizes (cross-task) one at a time.

Precomputed images (made elsewhere, e.g. by CDA's generators) are read here for both protocols alike: the file
``<folder>/<stem>.<any image suffix>`` (``{eps}`` in the folder replaced by the budget, 0-255 units), resized
like the clean images when those are square, else of its clean image's size, then clipped into the eps ball
of its clean image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from nrp.attacks import cda, load_cda_generator, ssp
from nrp.attacks.fff import apply_universal, fff, vgg_activations
from nrp.attacks.registry import get_attack
from nrp.errors import InputError
from nrp.eval.components import CDA, LABEL_FREE_ATTACKS, PRECOMPUTED, SSP_DEFAULTS, SSP_MODEL_KEYS, Component
from nrp.eval.datasets import read_batch, resize_square
from nrp.eval.models import ModelBank
from nrp.eval.sets import BatchMaker, ImageSet, batch_generator
from nrp.features import build_backbone
from nrp.fingerprint import file_sha256
from nrp.io import IMAGE_SUFFIXES, read_image

# run(x, labels, targets, generator, positions) -> x_adv on a batch of clean images in [0, 1]
AttackRun = Callable[[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None", torch.Generator, range], torch.Tensor]


class Crafter:
    """Runs the attack of each set on its clean images; one per protocol run, sharing the model bank.

    Args:
        models: the shared :class:`ModelBank` (source classifiers, feature extractors).
        seed: the run seed (FFF's universal perturbation is drawn from it).
        image_size: the side of the square clean images (classification protocol), or ``None`` for images
            that keep their own sizes (cross-task protocol: a precomputed image must then have its clean
            image's size, and FFF, one universal perturbation of one shape, cannot run).
    """

    def __init__(self, models: ModelBank, seed: int, image_size: int | None = None) -> None:
        self.models = models
        self.seed = seed
        self.image_size = image_size
        self.universal: dict[str, torch.Tensor] = {}

    def maker(self, image_set: ImageSet, clean: ImageSet, stems: Sequence[str], labels: torch.Tensor | None = None,
              targets: torch.Tensor | None = None) -> BatchMaker:
        """``make(positions, generator)``: the attacked images of ``stems[positions]``, read from ``clean``.

        Args:
            image_set: the set to craft (its attack, eps and source).
            clean: the set of clean images the attack starts from.
            stems: the images' names, in the set's order.
            labels, targets: ``(N,)`` true and target classes by position, for attacks that use them (``None``
                when the images have none).
        """
        attack = self._attack(image_set, stems)
        clean_paths = clean.paths(stems)

        def make(positions: range, generator: torch.Generator) -> torch.Tensor:
            x = read_batch([clean_paths[i] for i in positions]).to(self.models.device)
            y = None if labels is None else labels[list(positions)].to(x.device)
            t = None if targets is None else targets[list(positions)].to(x.device)
            return attack(x, y, t, generator, positions)

        return make

    def identity(self, image_set: ImageSet, stems: Sequence[str]) -> Any:
        """What the set is crafted on, as plain values for its record: the source classifier, SSP's or FFF's
        feature extractor, CDA's generator file, or the precomputed files of ``stems``."""
        attack = image_set.attack
        if attack.name not in LABEL_FREE_ATTACKS:
            return self.models.identity(image_set.source)
        if attack.name == PRECOMPUTED:
            folder = precomputed_folder(attack, image_set.eps)
            found = [find_precomputed(folder, stem) for stem in stems]
            return {"folder": str(folder), "files": [None if path is None else file_sha256(path) for path in found]}
        if attack.name == CDA:
            return {"generator": file_sha256(Path(attack.params["weights"])), "inception": attack.params.get("inception", False)}
        params = {**SSP_DEFAULTS, **attack.params}
        layer = params["layer"] if attack.name == "ssp" else ",".join(params.get("layers") or ["default"])
        return self.models.extractor_identity(params["backbone"], layer, params.get("backbone_weights"),
                                              params.get("input_size"))

    def _attack(self, image_set: ImageSet, stems: Sequence[str]) -> AttackRun:
        attack = image_set.attack
        eps = image_set.eps / 255
        params = dict(attack.params)
        if attack.name == PRECOMPUTED:
            folder = precomputed_folder(attack, image_set.eps)
            return lambda x, y, t, g, positions: read_precomputed(folder, [stems[i] for i in positions], x, eps,
                                                                  self.image_size)
        if attack.name == "ssp":
            extractor = self._extractor(params)
            return lambda x, y, t, g, positions: ssp(x, extractor, eps=eps, generator=g, **params)
        if attack.name == "fff":
            return lambda x, y, t, g, positions: apply_universal(x, self._universal(image_set, params))
        if attack.name == CDA:
            network = load_cda_generator(params["weights"], params.get("inception", False), self.models.device)
            return lambda x, y, t, g, positions: cda(x, network, eps=eps)
        function = get_attack(attack.name)
        model = self.models.classifier(image_set.source)
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

    def _extractor(self, params: dict[str, Any]) -> torch.nn.Module:
        settings = {**SSP_DEFAULTS, **{key: params.pop(key) for key in SSP_MODEL_KEYS if key in params}}
        return self.models.feature_extractor(settings["backbone"], settings["layer"], settings.get("backbone_weights"),
                                             settings.get("input_size"))

    def _universal(self, image_set: ImageSet, params: dict[str, Any]) -> torch.Tensor:
        if image_set.key not in self.universal:
            if self.image_size is None:
                raise InputError(f"attack {image_set.attack_label}: FFF's universal perturbation needs images of one size")
            extractor = self._extractor_layers(params)
            generator = batch_generator(self.seed, image_set.key, 0)
            self.universal[image_set.key] = fff(extractor, (3, self.image_size, self.image_size), eps=image_set.eps / 255,
                                                generator=generator, **params)
        return self.universal[image_set.key]

    def _extractor_layers(self, params: dict[str, Any]) -> torch.nn.Module:
        backbone = params.pop("backbone", "vgg16")
        model, mean, std = build_backbone(backbone, params.pop("backbone_weights", None) or self.models.weights.get(backbone))
        return vgg_activations(model.to(self.models.device), params.pop("layers", None), mean, std)


def precomputed_folder(attack: Component, eps: float) -> Path:
    """The folder of a precomputed attack at ``eps`` (0-255 units; ``{eps}`` in its name filled in)."""
    return Path(str(attack.params["folder"]).replace("{eps}", f"{eps:g}"))


def find_precomputed(folder: Path, stem: str) -> Path | None:
    """The file of ``stem`` in ``folder`` with any image suffix, or ``None``."""
    return next((folder / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES if (folder / f"{stem}{suffix}").is_file()), None)


def read_precomputed(folder: Path, stems: Sequence[str], clean: torch.Tensor, eps: float,
                     size: int | None = None) -> torch.Tensor:
    """The images made elsewhere for ``stems``, clipped into the eps ball of their clean images.

    Args:
        folder: where they are, one per stem (any image suffix).
        stems: the images' names, in batch order.
        clean: ``(B, 3, H, W)`` their clean images in [0, 1].
        eps: the L-inf budget in [0, 1] units.
        size: resize each like the square clean images (:func:`~nrp.eval.datasets.resize_square`), or ``None``:
            each must already have its clean image's size.

    Raises:
        InputError: a missing image, or one of another size than its clean image.
    """
    images = []
    for stem, x in zip(stems, clean):
        path = find_precomputed(folder, stem)
        if path is None:
            raise InputError(f"precomputed adversarial image for '{stem}' not found in {folder}")
        image = read_image(path) if size is None else resize_square(read_image(path), size)
        if image.shape != x.shape:
            raise InputError(f"{path} is {tuple(image.shape[-2:])} (H, W) but its clean image is {tuple(x.shape[-2:])}; "
                             f"precomputed images must keep the clean images' sizes")
        images.append(image)
    stored = torch.stack(images).to(clean.device)
    return torch.minimum(torch.maximum(stored, clean - eps), clean + eps).clamp(0, 1)
