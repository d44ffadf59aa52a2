"""Property-based tests (hypothesis) of ``nrp eval``'s experiment files: a run or one clear line, never a traceback.

Three levels, each derandomized with capped sizes so CI stays fast:

* random nested YAML/JSON structures as whole files, through the in-process command line;
* random mutations of a valid, cheap experiment (tiny TorchScript classifier, two 12 px photos): wrong types,
  unknown keys, random names and parameter values, deleted keys, flags; some still run, and must complete;
* random values for each key, straight into the schema: it accepts or refuses with one line, and whatever it
  accepts the downstream parsers (components, the cross-task and curves sections, attack entries' adaptive
  mappings, the attack and defense signatures) accept too.

A refusal (exit code 2) leaves no run folder behind; a runtime failure (exit code 1) no temporary file.
The total number of examples is the sum of the ``max_examples`` settings below.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from nrp.attacks.registry import ATTACKS
from nrp.cli.main import main
from nrp.defenses.registry import DEFENSES
from nrp.eval.adaptive import Adaptive
from nrp.eval.components import Component
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_schema import Options, attack_parameters, check_experiment, defense_parameters
from nrp.schema import SchemaError

FAST = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
KEYS = [field for field in EvalConfig.__dataclass_fields__]
# Names a user may write: registered ones (but those whose default models are large networks: ssp, fff, cda),
# near misses, and text that cannot name a folder.
CHEAP_ATTACKS = sorted(set(ATTACKS) - {"ssp", "fff", "cda", "autoattack"})
NAMES = st.sampled_from([*CHEAP_ATTACKS, *sorted(DEFENSES), "precomputed", "fgsn", "FGSM", "jpg", "top1", "top2",
                         "resnet18x", "vgg16", "", " ", "..", "a/b", "a+b", "+", "cpu", "meta", "eps/steps"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(-(2**70), -(2**62)), st.integers(2**63, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), NAMES,
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2))
STRUCTURES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=4),
                          max_leaves=12)


class MeanClassifier(torch.nn.Module):
    """Logits from the image mean: differentiable, so every attack runs on it in milliseconds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(1, 2, 3))[:, None] * 10, torch.zeros(x.shape[0], 9, dtype=x.dtype)], dim=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("experiment")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(photos / name)
    (root / "labels.csv").write_text("filename,label\na.png,0\nb.png,1\n")
    model = root / "mean.pt"
    torch.jit.script(MeanClassifier()).save(str(model))
    return {"photos": str(photos), "labels": str(root / "labels.csv"), "model": str(model)}


@pytest.fixture(scope="module", autouse=True)
def no_downloads():
    """Any attempt at published weights is a one-line error, never a download (or a wait on the network)."""
    from nrp.errors import WeightsUnavailableError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise WeightsUnavailableError("no downloads in tests")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.hub, "load_state_dict_from_url", refuse)
        patch.setattr(torch.hub, "download_url_to_file", refuse)
        yield


def valid_experiment(world: dict[str, str], out: str) -> dict[str, Any]:
    """A complete, cheap experiment: two attacks, two defenses, one tiny model as source and target."""
    return {"images": world["photos"], "labels": world["labels"], "out": out, "image_size": 12, "batch_size": 2,
            "sources": [world["model"]], "targets": [world["model"]], "eps": [8],
            "attacks": [{"name": "fgsm", "label": "FGSM"}, {"name": "i_fgsm", "steps": 2}],
            "defenses": ["none", {"name": "bit_depth", "bits": 3}], "grid_images": 0, "device": "cpu"}


def run_eval(text: str, suffix: str, *flags: str) -> tuple[int, str, Path]:
    folder = Path(tempfile.mkdtemp())
    path = folder / f"experiment{suffix}"
    path.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["eval", str(path), *flags])
    return code, err.getvalue(), folder


def assert_run_or_one_line(code: int, err: str, out: Path | None) -> None:
    """Exit 0/3 with no error line, or 1/2 with exactly one ``nrp: error:`` line; a refusal writes nothing."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("nrp: error: ")]
    if code in (0, 3):
        assert not errors, err
        return
    assert code in (1, 2) and len(errors) == 1, (code, err)
    if out is not None and code == 2:
        assert not out.exists(), f"refused with exit code 2 but {out} was created: {err}"
    if out is not None and out.exists():
        assert not list(out.rglob("*.tmp")), err


def dump(values: Any, as_json: bool) -> tuple[str, str]:
    if as_json:
        return json.dumps(values, default=str), ".json"
    return yaml.safe_dump(values, allow_unicode=True), ".yaml"


@settings(max_examples=150, **FAST)
@given(structure=STRUCTURES, as_json=st.booleans())
def test_random_structures_get_one_line(structure, as_json):
    if as_json and isinstance(structure, dict):
        structure = {str(key): value for key, value in structure.items()}
    text, suffix = dump(structure, as_json)
    code, err, folder = run_eval(text, suffix)
    assert_run_or_one_line(code, err, None)
    assert code == 2, err  # no random structure is a runnable experiment: no images, no targets
    assert sorted(p.name for p in folder.iterdir()) == [f"experiment{suffix}"]  # nothing written beside it


# Valid but unusual values, so that mutated experiments also run (other attacks, defenses, sizes, metrics).
PLAUSIBLE = {
    "attacks": st.lists(st.sampled_from(CHEAP_ATTACKS), max_size=2, unique=True),
    "defenses": st.lists(st.sampled_from(sorted(set(DEFENSES) - {"nrp", "nrp_dynamic"})), min_size=1, max_size=2,
                         unique=True),
    "eps": st.lists(st.integers(0, 32), min_size=1, max_size=2, unique=True),
    "image_size": st.integers(1, 16), "batch_size": st.integers(1, 3), "max_images": st.integers(1, 2),
    "seed": st.integers(0, 2**63 - 1), "grid_images": st.integers(0, 2), "label_offset": st.integers(-1, 1),
    "metric": st.sampled_from(["top1", "top5", "success_rate", "fooling_rate"]),
    "stale": st.sampled_from(["recompute", "refuse"]), "grid_attack": st.sampled_from(["FGSM", "i_fgsm"]),
}


def mutate(data: st.DataObject, experiment: dict[str, Any]) -> list[str]:
    """Apply one random mutation to ``experiment`` in place; returns flags to add to the command line."""
    operation = data.draw(st.sampled_from(["plausible", "plausible", "set", "delete", "parameter", "name", "section",
                                           "flag"]))
    if operation == "plausible":
        key = data.draw(st.sampled_from(sorted(PLAUSIBLE)))
        experiment[key] = data.draw(PLAUSIBLE[key])
    elif operation == "set":
        experiment[data.draw(st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=5)))] = data.draw(VALUES)
    elif operation == "delete" and experiment:
        del experiment[data.draw(st.sampled_from(sorted(experiment)))]
    elif operation in ("parameter", "name"):
        key = data.draw(st.sampled_from(["attacks", "defenses", "sources", "targets"]))
        items = experiment.get(key)
        if not isinstance(items, list) or not items:
            experiment[key] = [data.draw(NAMES)]
            return []
        index = data.draw(st.integers(0, len(items) - 1))
        if operation == "name" or key in ("sources", "targets"):
            entry = data.draw(NAMES)
            items[index] = {**items[index], "name": entry} if isinstance(items[index], dict) else entry
        else:
            entry = items[index] if isinstance(items[index], dict) else {"name": items[index]}
            known = ["steps", "step_size", "momentum", "target", "ti_kernel", "diversity_prob", "quality", "bits",
                     "sigma", "window", "weights", "label", "eps", "device", "adaptive"]
            entry[data.draw(st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=4)))] = data.draw(VALUES)
            items[index] = entry
    elif operation == "section":
        section = data.draw(st.sampled_from(["curves", "cross_task", "preprocessing", "model_weights"]))
        experiment[section] = data.draw(st.dictionaries(st.sampled_from(["source", "target", "images", "attacks",
                                                                          "defense", "crop_pct", "kind", "masks"]),
                                                         VALUES, max_size=3))
    elif operation == "flag":
        flag = data.draw(st.sampled_from(["--attacks", "--defenses", "--targets", "--sources", "--device", "--metric"]))
        return [f"{flag}={','.join(data.draw(st.lists(NAMES, min_size=1, max_size=2)))}"]
    return []


@settings(max_examples=40, **FAST)
@given(data=st.data(), as_json=st.booleans())
def test_mutated_experiments_run_or_get_one_line(world, data, as_json):
    out = Path(tempfile.mkdtemp()) / "run"
    experiment = valid_experiment(world, str(out))
    flags = []
    for _ in range(data.draw(st.integers(1, 3))):
        flags += mutate(data, experiment)
    text, suffix = dump(experiment, as_json)
    code, err, _ = run_eval(text, suffix, *flags)
    event(f"exit code {code}")
    assert_run_or_one_line(code, err, out)
    if code == 0:
        assert (out / "report" / "results.json").is_file()


def test_the_valid_experiment_runs(world, tmp_path):
    out = tmp_path / "run"
    code, err, _ = run_eval(yaml.safe_dump(valid_experiment(world, str(out))), ".yaml")
    assert code == 0, err
    rows = json.loads((out / "report" / "results.json").read_text())["rows"]
    assert len(rows) == 3 * 2  # (clean, FGSM, i_fgsm) x (none, bit_depth), one target


@settings(max_examples=400, **FAST)
@given(key=st.sampled_from(KEYS), value=VALUES, data=st.data())
def test_what_the_schema_accepts_the_pipeline_accepts(world, key, value, data):
    experiment = valid_experiment(world, "run")
    experiment[key] = value
    if key in ("attacks", "defenses") and data.draw(st.booleans()):  # a parameter of a drawn component instead
        name = data.draw(st.sampled_from(CHEAP_ATTACKS if key == "attacks" else sorted(DEFENSES)))
        experiment[key] = [{"name": name, data.draw(st.sampled_from(["steps", "step_size", "quality", "bits", "x"])): value}]
    strict = data.draw(st.booleans())
    try:
        checked = check_experiment(experiment, "F", Options(models=strict, paths=strict))
    except SchemaError as error:
        event("refused")
        assert "\n" not in str(error) and str(error).startswith("F: "), str(error)
        return
    event("accepted")
    config = EvalConfig(**checked)
    for what, components, parameters in (("attack", config.attacks, attack_parameters),
                                         ("defense", config.defenses, defense_parameters)):
        for value in components:
            component = Component.parse(value, what)
            accepted = parameters(component.name)
            assert set(component.params) <= set(accepted)
            registry = ATTACKS if what == "attack" else DEFENSES
            own = {key: value for key, value in component.params.items() if key != "adaptive"}
            if "adaptive" in component.params:
                Adaptive.parse(component.params["adaptive"])
            if component.name in registry and component.name not in ("ssp", "fff", "cda"):
                inspect.signature(registry[component.name]).bind_partial(**own)
    assert all(isinstance(eps, float) and 0 <= eps <= 255 for eps in config.eps)
    assert isinstance(config.batch_size, int) and not isinstance(config.batch_size, bool) and config.batch_size >= 1
    for section in ("curves", "cross_task"):
        if getattr(config, section) is not None:
            copy.deepcopy(getattr(config, section))  # plain values only
