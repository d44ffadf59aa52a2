"""The configuration of an evaluation run: one dataclass whose keys are the experiment file's keys.

It is plain data; :mod:`nrp.eval.experiment_file` reads and checks it against the schema of
:mod:`nrp.eval.experiment_schema`, which is derived from this dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nrp.eval.components import ADAPTIVE, NO_DEFENSE, Component


@dataclass
class EvalConfig:
    """Everything ``nrp eval`` needs (Section 4 of the paper); an experiment file sets these keys.

    ``eps`` is in 0-255 units, as in the paper's tables. A source joins models with ``+`` for an ensemble
    (``inc_v3+inc_v4``, attacked through their mean logits). The label-free ``ssp`` attack takes its
    feature extractor from its own ``backbone``/``layer`` parameters, so it is crafted once whatever the sources.
    ``preprocessing`` sets a zoo model's resize policy by name (``{inc_v3: {crop_pct: 1.0, interpolation:
    bilinear}}``; keys :data:`~nrp.eval.experiment_schema.PREPROCESSING_KEYS`); unset, each model has its
    published one (docs/models.md).
    An attack entry with an ``adaptive`` mapping is crafted through each defense in front of each target
    (:mod:`nrp.eval.adaptive`) instead of once per source.
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
    stale: str = "recompute"

    def attack_components(self) -> list[Component]:
        """The attacks as :class:`Component` s."""
        return [Component.parse(value, "attack") for value in self.attacks]

    def transfer_components(self) -> list[Component]:
        """The attacks crafted once per source (or feature extractor), blind to the defense."""
        return [c for c in self.attack_components() if ADAPTIVE not in c.params]

    def adaptive_components(self) -> list[Component]:
        """The attacks crafted through each defense in front of each target (an ``adaptive`` mapping)."""
        return [c for c in self.attack_components() if ADAPTIVE in c.params]

    def defense_components(self) -> list[Component]:
        """The defenses as :class:`Component` s (``none`` is the undefended target)."""
        return [Component.parse(value, "defense") for value in self.defenses]

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for results.json."""
        return dataclasses.asdict(self)

