"""The configuration of an evaluation run: one dataclass whose keys are the experiment file's keys."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from nrp.config_files import read_config_mapping
from nrp.errors import InputError
from nrp.eval.artefacts import check_policy, folder_name
from nrp.eval.components import LABEL_FREE_ATTACKS, NO_DEFENSE, Component
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.units import check_pixel_budget

# The preprocessing of a zoo model an experiment file may set per model (create_model's keyword arguments).
PREPROCESSING_KEYS = ("input_size", "crop_pct", "interpolation", "antialias")


@dataclass
class EvalConfig:
    """Everything ``nrp eval`` needs (Section 4 of the paper); an experiment file sets these keys.

    ``eps`` is in 0-255 units, as in the paper's tables. A source joins models with ``+`` for an ensemble
    (``inc_v3+inc_v4``, attacked through their mean logits). The label-free ``ssp`` attack takes its
    feature extractor from its own ``backbone``/``layer`` parameters, so it is crafted once whatever the sources.
    ``preprocessing`` sets a zoo model's resize policy by name (``{inc_v3: {crop_pct: 1.0, interpolation:
    bilinear}}``; keys :data:`PREPROCESSING_KEYS`); unset, each model has its published one (docs/models.md).
    ``stale`` says what to do with a stored set or prediction made under another configuration than this
    one (:mod:`nrp.eval.artefacts`): ``recompute`` it (logged), or ``refuse`` to run.
    """

    images: str = ""
    labels: str | None = None
    label_offset: int = 0
    image_size: int = 224
    max_images: int | None = None
    out: str = ""
    sources: list[str] = field(default_factory=list)
    attacks: list[Any] = field(default_factory=list)
    eps: list[float] = field(default_factory=lambda: [16.0])
    defenses: list[Any] = field(default_factory=lambda: [NO_DEFENSE])
    targets: list[str] = field(default_factory=list)
    model_weights: dict[str, str] = field(default_factory=dict)
    preprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    grid_images: int = 6
    grid_attack: str | None = None
    grid_defense: str | None = None
    metric: str = "top1"
    curves: dict[str, Any] | None = None
    cross_task: dict[str, Any] | None = None
    adaptive: dict[str, Any] | None = None  # attacks through the defense: nrp.eval.adaptive
    stale: str = "recompute"

    def validate(self) -> None:
        """Refuse values that cannot work, naming the key and the accepted range."""
        if not self.images:
            raise InputError("no evaluation images: set 'images' (a folder, or the NeurIPS-2017 dev set folder)")
        if not self.out:
            raise InputError("no run folder: set 'out' (or --out)")
        if not self.targets:
            raise InputError("no target models: set 'targets'")
        if self.attacks and not self.sources and any(a.name not in LABEL_FREE_ATTACKS for a in self.attack_components()):
            raise InputError("transfer attacks need source models: set 'sources'")
        for value in self.eps:
            check_pixel_budget("eps", value)
        for name in ("batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_images is not None and self.max_images < 1:
            raise InputError(f"max_images must be >= 1, got {self.max_images}")
        self._validate_preprocessing()
        check_policy(self.stale)
        _check_unique([c.label for c in self.defense_components()], "defense")
        _check_unique([c.label for c in self.attack_components()], "attack")
        if any(a.name == "cda" and "weights" not in a.params for a in self.attack_components()):
            raise InputError("a cda attack needs its generator: {name: cda, weights: FILE} (inception: true for Inc-v3's)")
        if self.adaptive is not None:
            from nrp.eval.adaptive import parse_adaptive
            parse_adaptive(self.adaptive)
        if self.cross_task is not None:
            CrossTaskConfig.parse(self.cross_task, self.eps)  # fail at the start, not after the classification run

    def _validate_preprocessing(self) -> None:
        if not isinstance(self.preprocessing, dict):
            raise InputError(f"preprocessing must map model names to settings, got {self.preprocessing!r}")
        for model, settings in self.preprocessing.items():
            if not isinstance(settings, dict):
                raise InputError(f"preprocessing.{model} must be a mapping of {', '.join(PREPROCESSING_KEYS)}, got {settings!r}")
            unknown = sorted(set(settings) - set(PREPROCESSING_KEYS))
            if unknown:
                raise InputError(f"preprocessing.{model}: unknown keys {', '.join(unknown)}; known: {', '.join(PREPROCESSING_KEYS)}")

    def attack_components(self) -> list[Component]:
        """The attacks as :class:`Component` s."""
        return [Component.parse(value, "attack") for value in self.attacks]

    def defense_components(self) -> list[Component]:
        """The defenses as :class:`Component` s (``none`` is the undefended target)."""
        return [Component.parse(value, "defense") for value in self.defenses]

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for results.json."""
        return dataclasses.asdict(self)


def _check_unique(labels: list[str], what: str) -> None:
    """Labels name folders: refuse repeats, and ones a case-insensitive file system would merge."""
    if len(set(labels)) != len(labels):
        raise InputError(f"{what} labels must be unique, got {', '.join(labels)} (give each a 'label')")
    folded: dict[str, str] = {}
    for label in labels:
        other = folded.setdefault(folder_name(label).casefold(), label)
        if other != label:
            raise InputError(f"{what} labels {other!r} and {label!r} differ only in case, so they would share a "
                             f"folder on case-insensitive file systems; label them otherwise")


def config_keys() -> set[str]:
    """The keys an experiment file may hold."""
    return {f.name for f in dataclasses.fields(EvalConfig)}


def load_eval_config(path: str | os.PathLike | None, overrides: dict[str, Any]) -> EvalConfig:
    """Defaults, then the experiment file (if any), then every override that is not ``None``; validated."""
    values = read_config_mapping(path, config_keys()) if path is not None else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    for key in ("sources", "targets", "attacks", "defenses"):
        if isinstance(values.get(key), str):
            values[key] = [item for item in values[key].split(",") if item]
    if isinstance(values.get("eps"), (int, float)):
        values["eps"] = [values["eps"]]
    config = EvalConfig(**values)
    config.validate()
    return config
