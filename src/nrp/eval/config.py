"""The configuration of an evaluation run: one dataclass whose keys are the experiment file's keys."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from nrp.config_files import read_config_mapping
from nrp.eval.components import NO_DEFENSE, Component
from nrp.eval.experiment_schema import Options, check_experiment


@dataclass
class EvalConfig:
    """Everything ``nrp eval`` needs (Section 4 of the paper); an experiment file sets these keys.

    ``eps`` is in 0-255 units, as in the paper's tables. A source joins models with ``+`` for an ensemble
    (``inc_v3+inc_v4``, attacked through their mean logits). The label-free ``ssp`` attack takes its
    feature extractor from its own ``backbone``/``layer`` parameters, so it is crafted once whatever the sources.
    ``preprocessing`` sets a zoo model's resize policy by name (``{inc_v3: {crop_pct: 1.0, interpolation:
    bilinear}}``; keys :data:`~nrp.eval.experiment_schema.PREPROCESSING_KEYS`); unset, each model has its
    published one (docs/models.md).
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
        """Check every key against the experiment file's schema (:mod:`nrp.eval.experiment_schema`): types,
        ranges, attack, defense, metric and curve names and parameters, and the checks across keys.

        Raises:
            SchemaError: (a :class:`~nrp.errors.UsageError`) every problem, in one line naming each key.
        """
        check_experiment(dataclasses.asdict(self))

    def attack_components(self) -> list[Component]:
        """The attacks as :class:`Component` s."""
        return [Component.parse(value, "attack") for value in self.attacks]

    def defense_components(self) -> list[Component]:
        """The defenses as :class:`Component` s (``none`` is the undefended target)."""
        return [Component.parse(value, "defense") for value in self.defenses]

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for results.json."""
        return dataclasses.asdict(self)


def load_eval_config(path: str | os.PathLike | None, overrides: dict[str, Any], strict: bool = False) -> EvalConfig:
    """Defaults, then the experiment file (if any), then every override that is not ``None``; checked as a whole.

    Args:
        path: the experiment file (YAML or JSON), or ``None``.
        overrides: values by key (the command line's flags; a key's flag is ``--key-name``).
        strict: also require known model names and existing input paths (the command line: a file cannot
            provide its own models, and every input must be there before the first image is read).

    Raises:
        UsageError: an unreadable file, or a bad value (:class:`~nrp.schema.SchemaError`, one line naming the
            file or the flag and the key).
    """
    values = read_config_mapping(path) if path is not None else {}
    where = {key: str(path) for key in ["", *values]} if path is not None else {}
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
            where[key] = f"--{key.replace('_', '-')}"
    checked = check_experiment(values, where, Options(models=strict, paths=strict))
    return EvalConfig(**checked)
