"""The ``cross_task`` section of an experiment file: datasets, label-free attacks and task models.

The paper's cross-task experiments (Table 2's detection and segmentation blocks, Table 4, Appendix E's Tables 6
and 7) attack images with perturbations that need no labels of the task (SSP, or CDA's generators run
elsewhere) and score detectors and segmenters behind each defense. This module only reads and checks the
section; :mod:`nrp.eval.cross_task` runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nrp.errors import InputError
from nrp.eval.components import CLEAN, PRECOMPUTED, SSP_MODEL_KEYS, Component
from nrp.units import check_pixel_budget

SSP = "ssp"
# The keyword parameters each label-free attack takes; SSP's model keys (backbone, layer, backbone_weights,
# input_size) pick its feature extractor, the rest go to nrp.attacks.ssp. A precomputed folder may hold "{eps}",
# filled with each eps (0-255).
ATTACK_PARAMS: dict[str, frozenset[str]] = {
    SSP: frozenset({*SSP_MODEL_KEYS, "steps", "step_size", "distance", "start"}),
    PRECOMPUTED: frozenset({"folder"}),
}
DEFAULT_DETECTOR_NAMES = ("maskrcnn", "retinanet")
DEFAULT_SEGMENTER_NAMES = ("deeplabv3",)
_LIST_KEYS = ("attacks", "detectors", "segmenters", "defenses")


@dataclass
class CrossTaskConfig:
    """The ``cross_task`` section: one image folder scored for detection (COCO JSON) and/or segmentation (masks).

    Args:
        images: folder of the images (COCO's ``val2017/``, VOC's ``JPEGImages/``); they keep their own sizes.
        annotations: COCO instances JSON (``file_name`` relative to ``images``): scores ``detectors``.
        masks: VOC-style label-mask folder (PNG per image stem): scores ``segmenters``.
        split_file: optional list of mask stems to use (VOC's ``ImageSets/Segmentation/val.txt``).
        num_classes: classes of the segmenters (VOC: 21; 255 is ignored).
        max_images: use the first N annotated images (ascending COCO id) and the first N masks (by stem).
        attacks: label-free attacks, each ``{name: ssp, backbone, layer, input_size, steps, step_size, label}`` or
            ``{name: precomputed, folder, label}`` (images made elsewhere, matched by stem; ``{eps}`` in the
            folder is replaced by each eps). Images are clipped into the eps ball of the clean image.
        eps: L-inf budgets in 0-255 units; default the experiment's top-level ``eps``.
        detectors: names of :data:`nrp.eval.detection.DEFAULT_DETECTORS` or torchvision detection builders;
            default ``maskrcnn`` and ``retinanet`` when ``annotations`` is set.
        segmenters: names of :data:`nrp.eval.segmentation.DEFAULT_SEGMENTERS` or torchvision segmentation
            builders; default ``deeplabv3`` when ``masks`` is set.
        weights: ``{model or backbone name: weights file}`` replacing torchvision's pretrained weights.
        defenses: labels of the experiment's top-level defenses to use; default all of them.

    Example:
        >>> cross = CrossTaskConfig.parse({"images": "val2017", "annotations": "instances_val2017.json",
        ...                                "attacks": [{"name": "ssp", "steps": 100, "label": "SSP"}]}, [8, 16])
        >>> cross.detectors, cross.eps, [attack.label for attack in cross.attack_components()]
        (['maskrcnn', 'retinanet'], [8.0, 16.0], ['SSP'])
    """

    images: str
    annotations: str | None = None
    masks: str | None = None
    split_file: str | None = None
    num_classes: int = 21
    max_images: int | None = None
    attacks: list[Any] = field(default_factory=list)
    eps: list[float] | None = None
    detectors: list[str] | None = None
    segmenters: list[str] | None = None
    weights: dict[str, str] = field(default_factory=dict)
    defenses: list[str] | None = None

    @classmethod
    def parse(cls, values: Mapping[str, Any], default_eps: Sequence[float] = (16.0,)) -> CrossTaskConfig:
        """Build from the experiment file's ``cross_task`` mapping, filling defaults and refusing bad values.

        Raises:
            InputError: not a mapping, an unknown key (the message lists the known ones), or a bad value.
        """
        if not isinstance(values, Mapping):
            raise InputError(f"cross_task must be a mapping of keys to values, got {type(values).__name__}")
        values = {str(key).replace("-", "_"): value for key, value in values.items()}
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"cross_task: unknown keys {', '.join(unknown)}; known: {', '.join(known)}")
        if not values.get("images"):
            raise InputError("cross_task: set 'images' (the folder of the COCO or VOC images)")
        for key in _LIST_KEYS:
            if isinstance(values.get(key), str):
                values[key] = [item for item in values[key].split(",") if item]
        if isinstance(values.get("eps"), (int, float)):
            values["eps"] = [values["eps"]]
        config = cls(**values)
        eps = list(default_eps) if config.eps is None else config.eps
        if not isinstance(eps, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in eps):
            raise InputError(f"cross_task: eps must be a list of numbers (0-255 units), got {eps!r}")
        config.eps = [float(value) for value in eps]
        if config.detectors is None:
            config.detectors = list(DEFAULT_DETECTOR_NAMES) if config.annotations else []
        if config.segmenters is None:
            config.segmenters = list(DEFAULT_SEGMENTER_NAMES) if config.masks else []
        config.validate()
        return config

    def validate(self) -> None:
        """Refuse values that cannot work, naming the key."""
        if not self.annotations and not self.masks:
            raise InputError("cross_task: set 'annotations' (COCO JSON, detection) and/or 'masks' (label masks, segmentation)")
        if self.detectors and not self.annotations:
            raise InputError(f"cross_task: detectors {', '.join(self.detectors)} need 'annotations' (a COCO JSON)")
        if self.segmenters and not self.masks:
            raise InputError(f"cross_task: segmenters {', '.join(self.segmenters)} need 'masks' (a label-mask folder)")
        if not self.detectors and not self.segmenters:
            raise InputError("cross_task: no task model to score; set 'detectors' or 'segmenters'")
        names = [*self.detectors, *self.segmenters]
        if len(set(names)) != len(names):
            raise InputError(f"cross_task: model names must be unique across detectors and segmenters, got {', '.join(names)}")
        if self.num_classes < 1:
            raise InputError(f"cross_task: num_classes must be >= 1, got {self.num_classes}")
        if self.max_images is not None and self.max_images < 1:
            raise InputError(f"cross_task: max_images must be >= 1, got {self.max_images}")
        if not isinstance(self.weights, Mapping):
            raise InputError(f"cross_task: weights must map model names to files, got {self.weights!r}")
        for value in self.eps:
            check_pixel_budget("cross_task eps", value)
        labels = [attack.label for attack in self.attack_components()]
        if len(set(labels)) != len(labels):
            raise InputError(f"cross_task: attack labels must be unique, got {', '.join(labels)} (give each a 'label')")
        if CLEAN in labels:
            raise InputError(f"cross_task: '{CLEAN}' names the unattacked images; label the attack otherwise")

    def attack_components(self) -> list[Component]:
        """The attacks as :class:`~nrp.eval.config.Component` s, each checked against :data:`ATTACK_PARAMS`."""
        components = [Component.parse(value, "cross_task attack") for value in self.attacks]
        for attack in components:
            if attack.name not in ATTACK_PARAMS:
                raise InputError(
                    f"cross_task attack {attack.name!r} is not label-free; known: {', '.join(ATTACK_PARAMS)}"
                )
            extra = sorted(set(attack.params) - ATTACK_PARAMS[attack.name])
            if extra:
                raise InputError(
                    f"cross_task attack {attack.label}: unknown parameters {', '.join(extra)}; "
                    f"known: {', '.join(sorted(ATTACK_PARAMS[attack.name]))}"
                )
            if attack.name == PRECOMPUTED and not attack.params.get("folder"):
                raise InputError(f"cross_task attack {attack.label}: a precomputed attack needs 'folder'")
        return components
