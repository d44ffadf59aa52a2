"""The names both evaluation protocols share: components of an experiment and the reserved names.

A leaf module (it imports no other ``nrp.eval`` module but the label checks), so the configuration, the set
store and the cross-task section can all import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nrp.errors import InputError
from nrp.eval.artefacts import check_label
from nrp.purifiers.shipped import SHIPPED_FILE

NO_DEFENSE = "none"
LABEL_FREE_ATTACKS = ("ssp", "fff", "precomputed", "cda")  # crafted without a source classifier
ENSEMBLE_JOIN = "+"
SHIPPED_DEFENSES = ("nrp_lite_shipped", "nrp_lite_shipped_dynamic")
CLEAN = "clean"
SSP_MODEL_KEYS = ("backbone", "layer", "backbone_weights", "input_size")
SSP_DEFAULTS = {"backbone": "vgg16", "layer": "conv3_3"}
PRECOMPUTED = "precomputed"  # adversarial images made elsewhere (e.g. by CDA's generators), read from a folder by name
CDA = "cda"  # CDA's generator run here: {name: cda, weights: FILE, inception: bool}
CROSS_TASK = "cross_task"  # the cross-task protocol: its folder in the run folder and the source of its sets
ADAPTIVE = "adaptive"  # an attack entry's mapping that crafts it through the defense (nrp.eval.adaptive)


@dataclass(frozen=True)
class Component:
    """One attack or defense of an experiment: a registered name, its keyword parameters and a display label."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @classmethod
    def parse(cls, value: str | dict[str, Any], what: str) -> Component:
        """``"jpeg"`` or ``{"name": "jpeg", "quality": 75, "label": "JPEG (q=75)"}``."""
        if isinstance(value, str):
            check_label(value, what)
            return cls(value, {}, value)
        if not isinstance(value, dict) or "name" not in value:
            raise InputError(f"each {what} must be a name or a mapping with a 'name' key, got {value!r}")
        params = {key: item for key, item in value.items() if key not in ("name", "label")}
        label = value.get("label")
        label = _default_label(value["name"], params) if label is None else str(label)
        check_label(label, what)
        return cls(str(value["name"]), params, label)


def _default_label(name: str, params: dict[str, Any]) -> str:
    """``name(key=value, ...)``; a weights file by its file name, so tables say which purifier ran."""
    shown = {key: Path(str(value)).name if key == "weights" else value for key, value in params.items()}
    if isinstance(shown.get(ADAPTIVE), dict):  # its substitute by its own label, so no path lands in the label
        shown[ADAPTIVE] = "{" + ", ".join(f"{key}={_brief(value)}" for key, value in shown[ADAPTIVE].items()) + "}"
    if name in SHIPPED_DEFENSES:
        shown = {"weights": SHIPPED_FILE.name, **shown}
    return name if not shown else f"{name}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def _brief(value: Any) -> Any:
    """A nested component (a substitute defense) by its default label; any other value as it is."""
    if isinstance(value, dict) and "name" in value:
        return value.get("label") or _default_label(str(value["name"]), {k: v for k, v in value.items() if k not in ("name", "label")})
    return value
