"""The schema of ``nrp eval``'s experiment files: every key, its type and range, and every name and parameter.

:func:`check_experiment` checks a whole experiment mapping before any work (before the first image is read):
wrong types, unknown keys, unknown attack, defense, model, metric and curve names, and attack and defense
parameters. Each bad value is one line naming where it is, ``FILE: attacks[0].steps: expected an integer,
got 'abc'``, listing the accepted keys, parameters or names where one is unknown. Attack and defense parameters
and their types come from the registries' signatures (:func:`~nrp.schema.signature_specs`), so a new attack
or defense needs no edit here; the iterative loop's shared parameters are refined with the attacks' own range
checks (:mod:`nrp.attacks.checks`), and defense parameters by the defenses' own checks
(:func:`~nrp.defenses.check_defense`, which loads no weights: ``nrp`` without ``weights`` is refused here).
The sections' keys come from the dataclasses that hold them
(:class:`~nrp.eval.config.EvalConfig`, :class:`~nrp.eval.cross_task_config.CrossTaskConfig`,
:class:`~nrp.eval.curves.CurveConfig`, and an attack entry's ``adaptive`` mapping from
:class:`~nrp.eval.adaptive.Adaptive`).

With ``strict`` (the command line), model names must be known to the zoo and every input path must exist;
without it (Python callers, who may pass their own models and create files later) both are left to the run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torchvision

from nrp.attacks.autoattack import VERSIONS as AUTOATTACK_VERSIONS
from nrp.attacks.checks import check_kernel_size, check_probability, check_step_size, check_steps
from nrp.attacks.distances import DISTANCES
from nrp.attacks.iterative import RANDOM_TARGET
from nrp.attacks.registry import ATTACKS
from nrp.attacks.ssp import STARTS
from nrp.defenses.registry import DEFENSES, check_defense
from nrp.devices import resolve_device
from nrp.errors import NRPError, ParameterError
from nrp.attacks.through_defense import GRADIENT_MODES
from nrp.eval.adaptive import Adaptive
from nrp.eval.artefacts import STALE_POLICIES, folder_name
from nrp.eval.components import ADAPTIVE, ENSEMBLE_JOIN, LABEL_FREE_ATTACKS, PRECOMPUTED, Component
from nrp.eval.config import EvalConfig
from nrp.eval.cross_task_config import ATTACK_PARAMS, CrossTaskConfig
from nrp.eval.curves import BUDGET_RULE, CurveConfig
from nrp.eval.detection import DEFAULT_DETECTORS
from nrp.eval.reports.rows import METRICS
from nrp.eval.segmentation import DEFAULT_SEGMENTERS
from nrp.schema import (
    AnyOf,
    Checked,
    Flag,
    ListOf,
    MapOf,
    Nullable,
    Number,
    Parameter,
    Problem,
    SchemaError,
    Section,
    Spec,
    Text,
    join,
    section_of,
    shown,
    signature_specs,
)
from nrp.validation import COUNT, FINITE, IMAGE_SIDE, LABEL_OFFSET, NON_NEGATIVE_INT, PIXELS, SEED, Range
from nrp.zoo.loaders import MODEL_FILE_SUFFIXES
from nrp.zoo.registry import TIMM_PREFIX, model_names

CROP_FRACTION = Range(float, 0.0, 1.0, open_minimum=True)
CURVE_STEP = Range(float, 0.0, 255.0, open_minimum=True)  # a fixed step of the curves, 0-255 units
DATASET_TARGET = "dataset"  # attack target: the dataset's target classes (NeurIPS-2017's TargetClass)
# Arguments the pipeline passes to an attack function (images, model, budget, random generator, callbacks).
SUPPLIED_TO_ATTACKS = ("model", "x", "y", "eps", "generator", "feature_extractor", "shape", "on_step", "init",
                       "generator_network")
SUPPLIED_TO_DEFENSES = ("device", "generator")
FFF_MODEL_KEYS = ("backbone", "backbone_weights", "layers")
PREPROCESSING_KEYS = ("input_size", "crop_pct", "interpolation", "antialias")
INTERPOLATIONS = ("bilinear", "bicubic")
MODEL_FORMS = f"or any torchvision classification model, {TIMM_PREFIX}<name>, or a {'/'.join(MODEL_FILE_SUFFIXES)} file"


@dataclass(frozen=True)
class Options:
    """How strictly to check: ``models`` must be known to the zoo; ``paths`` must exist (a precomputed folder
    holding ``{eps}`` for each of ``eps``, 0-255 units)."""

    models: bool = False
    paths: bool = False
    eps: tuple[float, ...] = (16.0,)


# --- leaves: paths and model names ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PathText:
    """A path (non-empty text); when ``must_exist``, a ``file`` or ``folder`` that exists (``{eps}`` filled in)."""

    kind: str = "file"
    must_exist: bool = False
    eps: tuple[float, ...] = ()

    def check(self, value: Any, path: str) -> str:
        value = Text(self.describe()).check(value, path)
        if self.must_exist:
            candidates = [value.replace("{eps}", f"{eps:g}") for eps in self.eps] if "{eps}" in value else [value]
            for candidate in candidates:
                found = Path(candidate)
                if not (found.is_dir() if self.kind == "folder" else found.is_file()):
                    state = "is not a folder" if self.kind == "folder" and found.exists() else \
                        "is not a file" if found.exists() else "does not exist"
                    raise Problem(path, f"{self.kind} {candidate!r} {state}")
        return value

    def describe(self) -> str:
        return f"a {self.kind} path"


def _is_model(name: str) -> bool:
    """A zoo name, a torchvision classification model, ``timm/<name>`` or a model file."""
    return (name in model_names() or (name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX))
            or Path(name).suffix.lower() in MODEL_FILE_SUFFIXES or name in _torchvision_models(None))


@functools.cache
def _torchvision_models(module: str | None) -> frozenset[str]:
    """torchvision's builder names of ``module`` (``detection``, ``segmentation``; ``None``: classification)."""
    return frozenset(torchvision.models.list_models(module=getattr(torchvision.models, module) if module else torchvision.models))


@dataclass(frozen=True)
class ModelName:
    """A classifier name; ``a+b`` is an ensemble, each member checked; known to the zoo when ``options.models``."""

    options: Options = Options()
    ensemble: bool = True

    def check(self, value: Any, path: str) -> str:
        value = Text(self.describe()).check(value, path)
        members = value.split(ENSEMBLE_JOIN) if self.ensemble else [value]
        for member in members:
            if not member.strip():
                raise Problem(path, f"empty ensemble member in {value!r}; join model names with '{ENSEMBLE_JOIN}'")
            if self.options.models and not _is_model(member):
                raise Problem(path, f"unknown model {member!r}; known: {', '.join(model_names())} ({MODEL_FORMS})")
            if self.options.models and self.options.paths and Path(member).suffix.lower() in MODEL_FILE_SUFFIXES:
                PathText("file", True).check(member, path)
        return value

    def describe(self) -> str:
        return "a model name" + (f" (models joined by '{ENSEMBLE_JOIN}': an ensemble)" if self.ensemble else "")


def task_model(kind: str, options: Options) -> Spec:
    """A detector (``detection``) or segmenter (``segmentation``) name: the paper's short names or torchvision's."""
    short = DEFAULT_DETECTORS if kind == "detection" else DEFAULT_SEGMENTERS
    if not options.models:
        return Text(f"a {kind} model name")
    return Text(f"a {kind} model name", names=lambda: list(short), kind=f"{kind} model",
                also=(lambda name: name in _torchvision_models(kind), f"or any torchvision {kind} builder"))


# --- attacks and defenses ---------------------------------------------------------------------------------------


def _probability(name: str) -> Spec:
    return Checked(Number(FINITE), lambda value: check_probability(value, name), "a finite number in [0, 1]")


# The iterative loop's shared parameters, refined with the attacks' own checks (the hints say only int/float).
ATTACK_REFINEMENTS: dict[str, Spec] = {
    "steps": Checked(Number(Range(int)), check_steps, COUNT.describe()),
    "step_size": Checked(Number(FINITE), check_step_size, "a finite number in [0, 1]"),
    "diversity_prob": _probability("diversity_prob"),
    "ti_kernel": Checked(Number(Range(int)), check_kernel_size, "an odd integer >= 1"),
    "target": Text("a target mode", names=lambda: [RANDOM_TARGET, DATASET_TARGET], kind="target mode"),
    "distance": Text("a distance", names=lambda: sorted(DISTANCES), kind="distance"),
    "start": Text("a start", names=lambda: list(STARTS), kind="start"),
    "version": Text("an AutoAttack version", names=lambda: list(AUTOATTACK_VERSIONS), kind="AutoAttack version"),
}


def attack_parameters(name: str, options: Options = Options()) -> dict[str, Parameter]:
    """The parameters an experiment file may give attack ``name`` (registered, or ``precomputed``).

    A registered attack takes its function's keyword arguments but those the pipeline supplies
    (:data:`SUPPLIED_TO_ATTACKS`); the label-free ones add how their model is chosen: SSP's feature extractor
    (``backbone``, ``layer``, ``backbone_weights``), FFF's (``backbone``, ``backbone_weights``, ``layers``), CDA's
    generator (``weights``, ``inception``), or a ``precomputed`` folder of images made elsewhere. A classifier
    attack also takes ``adaptive`` (:func:`adaptive_section`): crafted through each defense, not per source.
    """
    if name == PRECOMPUTED:
        return {"folder": Parameter(PathText("folder", options.paths, options.eps), required=True)}
    if name == "cda":
        return {"weights": Parameter(PathText("file", options.paths), required=True), "inception": Parameter(Flag())}
    parameters = signature_specs(ATTACKS[name], SUPPLIED_TO_ATTACKS, ATTACK_REFINEMENTS)
    if name not in LABEL_FREE_ATTACKS:  # a classifier attack may be crafted through the defense
        parameters[ADAPTIVE] = Parameter(adaptive_section(options))
    backbone = Parameter(ModelName(options, ensemble=False))
    weights = Parameter(Nullable(PathText("file", options.paths)))
    if name == "ssp":
        parameters.update(backbone=backbone, layer=Parameter(Text("a layer name")), backbone_weights=weights,
                          input_size=Parameter(Nullable(Number(COUNT))))
    elif name == "fff":
        parameters.update(backbone=backbone, backbone_weights=weights,
                          layers=Parameter(Nullable(ListOf(Text("a layer name")))))
    return parameters


def attack_names() -> list[str]:
    """Every attack an experiment file may name."""
    return sorted({*ATTACKS, PRECOMPUTED})


def defense_parameters(name: str, options: Options = Options()) -> dict[str, Parameter]:
    """The parameters an experiment file may give defense ``name``: its factory's keyword arguments but those
    the pipeline supplies (:data:`SUPPLIED_TO_DEFENSES`); a ``weights`` file must exist under ``options.paths``."""
    parameters = signature_specs(DEFENSES[name], SUPPLIED_TO_DEFENSES)
    if "weights" in parameters:
        parameters["weights"] = Parameter(Nullable(PathText("file", options.paths)), parameters["weights"].required)
    return parameters


@dataclass(frozen=True)
class ComponentSpec:
    """An attack or defense: a name, or ``{name, label, ...parameters}`` with the parameters ``parameters`` gives."""

    kind: str
    names: Callable[[], list[str]]
    parameters: Callable[[str], dict[str, Parameter]]
    check_values: Callable[[str, dict[str, Any]], None] | None = None  # the component's own range checks

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            name, settings = value, {}
            self._name(name, path)
        elif isinstance(value, Mapping):
            if "name" not in value:
                raise Problem(path, f"missing 'name' (the {self.kind}: {', '.join(self.names())})")
            name, settings = value["name"], {k: v for k, v in value.items() if k not in ("name", "label")}
            self._name(name, join(path, "name"))
            if value.get("label") is not None and not isinstance(value["label"], str):
                raise Problem(join(path, "label"), f"expected a text, got {shown(value['label'])}")
        else:
            raise Problem(path, f"expected {self.describe()}, got {shown(value)}")
        accepted = self.parameters(name)
        for key, item in settings.items():
            if key not in accepted:
                listed = ", ".join(["label", *accepted])
                raise Problem(join(path, str(key)), f"{self.kind} '{name}' takes no parameter {shown(key)}; accepted: {listed}")
            accepted[key].spec.check(item, join(path, key))
        missing = [key for key, parameter in accepted.items() if parameter.required and key not in settings]
        if missing:
            raise Problem(path, f"{self.kind} '{name}' needs {', '.join(repr(key) for key in missing)}")
        self._values(name, settings, path)
        self._label(value, path)
        return value

    def _values(self, name: str, settings: dict[str, Any], path: str) -> None:
        """The component's own checks: a bad value is named by its key, a missing one by the entry."""
        if self.check_values is None:
            return
        try:
            self.check_values(name, settings)
        except ParameterError as error:
            key = error.parameter
            raise Problem(join(path, key) if key in settings else path, str(error).splitlines()[0]) from None
        except NRPError as error:
            raise Problem(path, str(error).splitlines()[0]) from None

    def _name(self, name: Any, path: str) -> None:
        Text(f"an {self.kind} name", names=self.names, kind=self.kind).check(name, path)

    def _label(self, value: Any, path: str) -> None:
        """The label the run will use (given, or made from the name and parameters) must name a folder."""
        given = isinstance(value, Mapping) and value.get("label") is not None
        try:
            Component.parse(value, self.kind)
        except NRPError as error:
            advice = "" if given or isinstance(value, str) else "; give it a 'label'"
            raise Problem(join(path, "label") if given else path, f"{error}{advice}") from None

    def describe(self) -> str:
        article = "an" if self.kind[0] in "aeiou" else "a"
        return f"{article} {self.kind} name or a mapping {{name, label, ...parameters}}"


def attack_spec(options: Options, names: Callable[[], list[str]] = attack_names) -> ComponentSpec:
    return ComponentSpec("attack", names, lambda name: attack_parameters(name, options))


def defense_spec(options: Options) -> ComponentSpec:
    return ComponentSpec("defense", lambda: sorted(DEFENSES), lambda name: defense_parameters(name, options),
                         lambda name, settings: check_defense(name, **settings))


# --- sections ---------------------------------------------------------------------------------------------------


def preprocessing_section() -> Section:
    """A zoo model's resize policy: the keys :func:`~nrp.zoo.create_model` takes for it."""
    return Section({  # create_model's keyword arguments for it
        "input_size": AnyOf((Number(COUNT), ListOf(Number(COUNT)))),
        "crop_pct": Number(CROP_FRACTION),
        "interpolation": Text("an interpolation", names=lambda: list(INTERPOLATIONS), kind="interpolation"),
        "antialias": Flag(),
    })


def curves_section(options: Options) -> Section:
    """``curves``: Figures 3 and 6 (:class:`~nrp.eval.curves.CurveConfig`)."""
    def parse(values: dict[str, Any], path: str) -> None:
        _raise_at(path, CurveConfig.parse, values)

    model = ModelName(options)
    return section_of(CurveConfig, {
        "source": model, "target": model,
        "attacks": ListOf(Text("an attack name", names=lambda: sorted(ATTACKS), kind="attack"), commas=True),
        "iterations": ListOf(Number(COUNT), single=True, non_empty=True), "images": Number(COUNT),
        "eps": Number(PIXELS), "backbone": ModelName(options, ensemble=False), "layer": Text("a layer name"),
        "step_size": AnyOf((Text("the rule", names=lambda: [BUDGET_RULE], kind="step rule"), Number(CURVE_STEP))),
    }, then=parse)


def cross_task_section(options: Options) -> Section:
    """``cross_task``: detection and segmentation (:class:`~nrp.eval.cross_task_config.CrossTaskConfig`)."""
    def parameters(name: str) -> dict[str, Parameter]:
        every = attack_parameters(name, Options(options.models, paths=False))
        return {key: every[key] for key in sorted(ATTACK_PARAMS[name]) if key in every}

    def parse(values: dict[str, Any], path: str) -> None:
        _raise_at(path, CrossTaskConfig.parse, values, options.eps)

    folder, file = PathText("folder", options.paths), PathText("file", options.paths)
    return section_of(CrossTaskConfig, {
        "images": folder, "annotations": Nullable(file), "masks": Nullable(folder), "split_file": Nullable(file),
        "num_classes": Number(COUNT), "max_images": Nullable(Number(COUNT)),
        "attacks": ListOf(ComponentSpec("cross_task attack", lambda: sorted(ATTACK_PARAMS), parameters), commas=True),
        "eps": Nullable(ListOf(Number(PIXELS), single=True, non_empty=True)),
        "detectors": Nullable(ListOf(task_model("detection", options), commas=True)),
        "segmenters": Nullable(ListOf(task_model("segmentation", options), commas=True)),
        "weights": MapOf(file, key="model name"),
        "defenses": Nullable(ListOf(Text("a defense label"), commas=True)),
    }, then=parse)


def adaptive_section(options: Options) -> Section:
    """An attack entry's ``adaptive`` mapping: crafted through each defense (:class:`~nrp.eval.adaptive.Adaptive`)."""
    return section_of(Adaptive, {
        "gradient": Text("a gradient mode", names=lambda: list(GRADIENT_MODES), kind="gradient mode"),
        "eot": Number(COUNT), "fixed": Flag(), "draws": Number(COUNT), "source": Nullable(ModelName(options)),
        "substitute": Nullable(defense_spec(options)), "max_images": Nullable(Number(COUNT)),
    }, then=lambda values, path: _raise_at(path, Adaptive.parse, values))


def _raise_at(path: str, parse: Callable[..., Any], *arguments: Any) -> None:
    """Run a section's own parser (its checks across keys) on checked values; its refusal becomes a problem."""
    try:
        parse(*arguments)
    except NRPError as error:
        message = str(error)
        section = path.split(".")[-1]
        for prefix in (f"{section}: ", f"{section} "):  # the parser names its section; the path already does
            message = message[len(prefix):] if message.startswith(prefix) else message
        raise Problem(path, message) from None


def experiment_section(options: Options) -> Section:
    """The top level of an experiment file: the keys of :class:`~nrp.eval.config.EvalConfig`."""
    model = ModelName(options)
    optional = {"curves": curves_section(options), "cross_task": cross_task_section(options)}
    return section_of(EvalConfig, {
        "images": PathText("folder", options.paths), "labels": Nullable(PathText("file", options.paths)),
        "label_offset": Number(LABEL_OFFSET), "image_size": Number(IMAGE_SIDE), "max_images": Nullable(Number(COUNT)),
        "out": Text("a folder path"),
        "sources": ListOf(model, commas=True), "attacks": ListOf(attack_spec(options), commas=True),
        "eps": ListOf(Number(PIXELS), single=True, non_empty=True),
        "defenses": ListOf(defense_spec(options), commas=True, non_empty=True),
        "targets": ListOf(model, commas=True, non_empty=True),
        "model_weights": MapOf(PathText("file", options.paths), key="model name"),
        "preprocessing": MapOf(preprocessing_section(), key="model name"),
        "batch_size": Number(COUNT), "seed": Number(SEED),
        "device": Checked(Text("a device name"), resolve_device),
        "grid_images": Number(NON_NEGATIVE_INT), "grid_attack": Nullable(Text("an attack label")),
        "grid_defense": Nullable(Text("a defense label")),
        "metric": Text("a metric name", names=lambda: list(METRICS), kind="metric"),
        "stale": Text("a stale policy", names=lambda: list(STALE_POLICIES), kind="stale policy"),
        **{key: Nullable(section) for key, section in optional.items()},
    }, then=check_consistency)


def check_consistency(values: dict[str, Any], path: str = "") -> None:
    """Checks across keys: what must be set, sources for transfer attacks, unique labels, grid and cross-task
    labels that name an attack or defense of the file."""
    config = {**{key: getattr(EvalConfig(), key) for key in ("images", "out", "targets", "sources", "attacks")},
              **{key: value for key, value in values.items() if key != "eps"}}
    if not config["images"]:
        raise Problem("images", "no evaluation images: set 'images' (a folder, or the NeurIPS-2017 dev set folder)")
    if not config["out"]:
        raise Problem("out", "no run folder: set 'out' (or --out)")
    if not config["targets"]:
        raise Problem("targets", "no target models: set 'targets'")
    attacks = [Component.parse(value, "attack") for value in config["attacks"]]
    transfer = [attack for attack in attacks if attack.name not in LABEL_FREE_ATTACKS and ADAPTIVE not in attack.params]
    if not config["sources"] and transfer:
        raise Problem("sources", "transfer attacks need source models: set 'sources' (or craft them through the "
                                 "defense: 'adaptive')")
    defenses = [Component.parse(value, "defense") for value in values.get("defenses", EvalConfig().defenses)]
    for key, components in (("defenses", defenses), ("attacks", attacks)):
        problem = unique_label_problem([c.label for c in components], key[:-1])
        if problem:
            raise Problem(key, problem)
    for key, components in (("grid_attack", attacks), ("grid_defense", defenses)):
        label = values.get(key)
        if label is not None and components and label not in [c.label for c in components]:
            raise Problem(key, f"{label!r} names no {key[5:]} of the file; labels: {', '.join(c.label for c in components)}")
    cross = values.get("cross_task") or {}
    for index, label in enumerate(cross.get("defenses") or []):
        if label not in [c.label for c in defenses]:
            raise Problem(f"cross_task.defenses[{index}]",
                          f"{label!r} names no defense of the file; labels: {', '.join(c.label for c in defenses)}")


def unique_label_problem(labels: list[str], what: str) -> str | None:
    """Labels name folders: a repeat, or two a case-insensitive file system would merge, is a problem."""
    if len(set(labels)) != len(labels):
        return f"{what} labels must be unique, got {', '.join(labels)} (give each a 'label')"
    folded: dict[str, str] = {}
    for label in labels:
        other = folded.setdefault(folder_name(label).casefold(), label)
        if other != label:
            return (f"{what} labels {other!r} and {label!r} differ only in case, so they would share a folder on "
                    f"case-insensitive file systems; label them otherwise")
    return None


def check_experiment(values: Mapping[str, Any], where: str | Mapping[str, str] = "",
                     options: Options = Options()) -> dict[str, Any]:
    """Check an experiment mapping (file keys and flags merged); the values, normalised (``eps: 8`` -> ``[8.0]``).

    Args:
        values: the experiment's keys (dashes in keys are read as underscores).
        where: what the messages start with: the file's path, or per key where its value came from (a file's
            path, or a flag such as ``--eps``), the key ``""`` naming where a key that is not set would go.
        options: how strictly (:class:`Options`).

    Raises:
        SchemaError: (exit code 2) every problem found, in one line: the first in full, the others by path.
    """
    try:
        eps = tuple(ListOf(Number(PIXELS), single=True, non_empty=True).check(values.get("eps", 16.0), "eps"))
    except Problem:  # reported with the others below
        eps = (16.0,)
    options = dataclasses.replace(options, eps=eps)
    checked, problems = experiment_section(options).check_all(values, "")
    if problems:
        top = problems[0].path.split(".")[0].split("[")[0]
        origin = where if isinstance(where, str) else where.get(top) or where.get("", "")
        raise SchemaError(problems, origin)
    return checked


def reference_markdown() -> str:
    """The experiment file's reference, generated from the schema: what each key (and each key of the sections)
    accepts and its default, and every attack's and defense's parameters. docs/evaluation.md holds it between
    ``<!-- schema -->`` markers; a test keeps the two equal."""
    defaults, top = EvalConfig(), experiment_section(Options())
    lines = ["| key | accepts | default |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {spec.describe()} | `{json.dumps(getattr(defaults, key))}` |" for key, spec in top.fields.items()]
    sections = {"preprocessing.MODEL": preprocessing_section(), "curves": curves_section(Options()),
                "cross_task": cross_task_section(Options()), "attacks[i].adaptive": adaptive_section(Options())}
    lines += ["", "| section key | accepts |", "| --- | --- |"]
    for name, section in sections.items():
        lines += [f"| `{name}.{key}` | {spec.describe()}{' (required)' if key in section.required else ''} |"
                  for key, spec in section.fields.items()]
    for kind, names, parameters in (("attack", attack_names(), attack_parameters),
                                    ("defense", sorted(DEFENSES), defense_parameters)):
        lines += ["", f"| {kind} | parameters besides `label` |", "| --- | --- |"]
        for name in names:
            cells = [f"`{key}` ({parameter.spec.describe()}{', required' if parameter.required else ''})"
                     for key, parameter in parameters(name).items()]
            lines.append(f"| `{name}` | {'; '.join(cells) or 'none'} |")
    return "\n".join(lines)
