"""The experiment-file schema: keys from the dataclasses, parameters from the registries, one line per problem,
and the docs' reference equal to the schema."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from nrp.attacks.registry import ATTACKS, register
from nrp.eval.adaptive import Adaptive
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config, load_eval_config
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.eval.curves import CurveConfig
from nrp.eval.experiment_schema import (
    Options,
    adaptive_section,
    check_experiment,
    cross_task_section,
    curves_section,
    experiment_section,
    reference_markdown,
)
from nrp.schema import SchemaError

DOCS = Path(__file__).parents[2] / "docs" / "evaluation.md"
BASE = {"images": "imgs", "out": "run", "targets": ["resnet18"], "sources": ["resnet18"]}


def refused(values: dict, options: Options = Options()) -> str:
    with pytest.raises(SchemaError) as error:
        check_experiment({**BASE, **values}, "F", options)
    message = str(error.value)
    assert "\n" not in message and message.startswith("F: ")
    return message


def test_the_sections_have_the_dataclasses_keys():
    keys = lambda cls: [f.name for f in dataclasses.fields(cls)]  # noqa: E731
    assert list(experiment_section(Options()).fields) == keys(EvalConfig)
    assert list(cross_task_section(Options()).fields) == keys(CrossTaskConfig)
    assert list(curves_section(Options()).fields) == keys(CurveConfig)
    assert list(adaptive_section(Options()).fields) == keys(Adaptive)


def test_values_are_normalised():
    checked = check_experiment({**BASE, "eps": 8, "targets": "resnet18,resnet34", "batch-size": 4})
    assert checked["eps"] == [8.0] and isinstance(checked["eps"][0], float)
    assert checked["targets"] == ["resnet18", "resnet34"] and checked["batch_size"] == 4


def test_every_problem_is_named_in_one_line_the_first_in_full():
    message = refused({"batch_size": 0, "metric": "top2", "attacks": [{"name": "fgsm", "steps": 2}], "colour": 1})
    assert message == "F: batch_size: expected an integer >= 1, got 0 (3 more: metric, attacks[0].steps, colour)"
    assert refused({"attacks": [{"name": "fgsm", "steps": 2}]}) == \
        "F: attacks[0].steps: attack 'fgsm' takes no parameter 'steps'; accepted: label, target, adaptive"


@pytest.mark.parametrize("values, message", [
    ({"eps": "abc"}, "F: eps[0]: expected a finite number in [0, 255], got 'abc'"),
    ({"eps": True}, "F: eps[0]: expected a finite number in [0, 255], got True"),
    ({"eps": [2**2000]}, "F: eps[0]: expected a finite number in [0, 255], got 1"),
    ({"attacks": [{"name": "mi_fgsm", "momentum": "x"}]}, "F: attacks[0].momentum: expected a finite number, got 'x'"),
    ({"attacks": [{"name": "pgd", "random_start": 1}]}, "F: attacks[0].random_start: expected true or false, got 1"),
    ({"attacks": [{"name": "ssp", "step_size": 2.0}]}, "F: attacks[0].step_size: step_size must be in [0, 1]"),
    ({"attacks": [{"name": "dim", "diversity_prob": 1.5}]}, "F: attacks[0].diversity_prob: diversity_prob must be in [0, 1]"),
    ({"attacks": [{"name": "r_fgsm", "alpha": None}]}, None),
    ({"defenses": [{"name": "tvm", "weight": "heavy"}]}, "F: defenses[0].weight: expected a finite number, got 'heavy'"),
    ({"defenses": [{"name": "random_resize_pad", "output_size": [3, "x"]}]}, "F: defenses[0].output_size"),
    ({"defenses": [{"name": "none", "label": 5}]}, "F: defenses[0].label: expected a text, got 5"),
    # the defenses' own range checks (check_defense), with the key's path; nothing is built or loaded
    ({"defenses": [{"name": "median", "window": 4}]}, "F: defenses[0].window: window must be an odd integer >= 1, got 4"),
    ({"defenses": [{"name": "jpeg", "quality": 0}]}, "F: defenses[0].quality: quality must be an integer in 1..100, got 0"),
    ({"defenses": ["none", {"name": "bit_depth", "bits": 9}]}, "F: defenses[1].bits: bits must be an integer in 1..8"),
    ({"defenses": [{"name": "gaussian", "sigma": 0}]}, "F: defenses[0].sigma: sigma must be a number in (0.0, inf]"),
    ({"defenses": [{"name": "tvm", "norm": 3}]}, "F: defenses[0].norm: norm must be 1 or 2, got 3"),
    ({"defenses": [{"name": "tvm", "keep_prob": 2}]}, "F: defenses[0].keep_prob: keep_prob must be a number in (0.0, 1.0]"),
    ({"defenses": [{"name": "tvm", "weight": 10, "lamb": 0.1}]}, "F: defenses[0]: give the TVM either weight"),
    ({"defenses": [{"name": "nrp_dynamic", "weights": "w.pth", "noise_eps": 2}]}, "F: defenses[0].noise_eps: noise_eps"),
    ({"defenses": [{"name": "nrp_lite_shipped", "tile_size": 0}]}, "F: defenses[0].tile_size: tile_size must be"),
    ({"defenses": [{"name": "nrp"}]}, "F: defenses[0]: the nrp defense needs a purifier weights file"),
    ({"defenses": [{"name": "nrp_dynamic", "weights": None}]}, "F: defenses[0].weights: the nrp_dynamic defense needs"),
    ({"attacks": [{"name": "pgd", "adaptive": {"gradient": "substitute", "source": "resnet18",
                                               "substitute": {"name": "median", "window": 2}}}]},
     "F: attacks[0].adaptive.substitute.window: window must be an odd integer"),
    ({"defenses": [{"name": "median", "window": 5}, {"name": "jpeg", "quality": 100}, {"name": "bit_depth", "bits": 1},
                   {"name": "gaussian", "sigma": 0.5}, {"name": "tvm", "norm": 1, "keep_prob": 1.0},
                   {"name": "nrp", "weights": "NRP.pth"}]}, None),
    ({"preprocessing": {"resnet18": 5}}, "F: preprocessing.resnet18: expected a mapping of input_size, crop_pct"),
    ({"curves": {"source": "resnet18", "target": "resnet18", "step_size": "eps/2"}}, "F: curves.step_size: expected the rule"),
    ({"attacks": [{"name": "pgd", "adaptive": {"eot": 0}}]}, "F: attacks[0].adaptive.eot: expected an integer >= 1, got 0"),
    ({"attacks": [{"name": "pgd", "adaptive": {"restarts": 2}}]},
     "F: attacks[0].adaptive.restarts: unknown key; known: gradient, eot, fixed, draws, source, substitute, max_images"),
    ({"attacks": [{"name": "pgd", "adaptive": {"gradient": "straight"}}]},
     "F: attacks[0].adaptive.gradient: unknown gradient mode 'straight'; known: full, identity, substitute"),
    ({"attacks": [{"name": "pgd", "adaptive": {"gradient": "substitute"}}]},
     "F: attacks[0].adaptive: 'gradient: substitute' and a 'substitute' defense go together"),
    ({"attacks": [{"name": "pgd", "adaptive": {"substitute": {"name": "jpg"}}}]},
     "F: attacks[0].adaptive.substitute.name: unknown defense 'jpg'"),
    ({"attacks": [{"name": "pgd", "adaptive": "full"}]}, "F: attacks[0].adaptive: expected a mapping of gradient, eot"),
    ({"attacks": [{"name": "ssp", "adaptive": {}}]}, "F: attacks[0].adaptive: attack 'ssp' takes no parameter 'adaptive'"),
    ({"attacks": [{"name": "autoattack", "version": "rand", "eot_draws": 4, "adaptive": {"draws": 5, "fixed": True}}],
      "sources": []}, None),
    ({"attacks": [{"name": "dim_ti_fgsm", "adaptive": {"gradient": "substitute", "source": "resnet18",
                                                      "substitute": {"name": "nrp_lite_shipped"}}}]}, None),
    ({"adaptive": {"defense": "none"}}, "F: adaptive: unknown key; known: images"),
    ({"cross_task": {"images": "x", "masks": "m", "num_classes": 0}}, "F: cross_task.num_classes: expected an integer >= 1, got 0"),
])
def test_each_value_is_checked_where_it_is(values, message):
    if message is None:
        check_experiment({**BASE, **values})
    else:
        assert refused(values).startswith(message)


def test_model_names_and_paths_only_when_strict(tmp_path):
    values = {**BASE, "images": str(tmp_path), "targets": ["tiny"], "labels": str(tmp_path / "gone.csv")}
    check_experiment(values)  # a Python caller may provide the model 'tiny' and write the labels later
    message = refused(values, Options(models=True, paths=True))
    assert message.startswith("F: targets[0]: unknown model 'tiny'") and message.endswith("(1 more: labels)")
    assert "unknown model 'tiny'" in refused({"targets": ["tiny"]}, Options(models=True))


def test_a_new_attack_needs_no_schema_edit():
    def sparkle(model, x, y=None, eps=16 / 255, *, glitter: int = 3, colour: str = "gold", generator=None):
        return x

    register("sparkle")(sparkle)
    try:
        check_experiment({**BASE, "attacks": [{"name": "sparkle", "glitter": 5, "colour": "red"}]})
        assert refused({"attacks": [{"name": "sparkle", "glitter": "lots"}]}) == \
            "F: attacks[0].glitter: expected an integer, got 'lots'"
        assert refused({"attacks": [{"name": "sparkle", "generator": 1}]}).endswith("accepted: label, glitter, colour, adaptive")
    finally:
        del ATTACKS["sparkle"]


def test_flags_are_named_as_flags(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("images: imgs\nout: run\ntargets: [resnet18]\n")
    with pytest.raises(SchemaError, match=r"^--attacks: attacks\[0\]: unknown attack 'fgsn'"):
        load_eval_config(path, {"attacks": "fgsn"})
    with pytest.raises(SchemaError, match=rf"^{re.escape(str(path))}: targets\[0\]: unknown model 'resnet81'"):
        path.write_text(f"images: {tmp_path}\nout: run\ntargets: [resnet81]\n")
        load_eval_config(path, {}, strict=True)


def test_a_key_the_file_lacks_is_named_with_the_file(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("out: run\ntargets: [resnet18]\n")
    with pytest.raises(SchemaError, match=rf"^{re.escape(str(path))}: images: no evaluation images: set 'images'"):
        load_eval_config(path, {})


def test_validate_is_the_schema_for_python_configs():
    with pytest.raises(SchemaError, match=r"^batch_size: expected an integer >= 1, got 0$"):
        check_config(EvalConfig(images="x", out="y", targets=["m"], batch_size=0))
    check_config(EvalConfig(images="x", out="y", targets=["m"], attacks=[{"name": "i_fgsm", "steps": 2}], sources=["m"]))


def test_the_docs_reference_is_the_schemas():
    text = DOCS.read_text()
    block = text.split("<!-- schema -->\n")[1].split("\n<!-- /schema -->")[0]
    assert block == reference_markdown(), (
        "docs/evaluation.md's schema block is stale: replace it with nrp.eval.experiment_schema.reference_markdown()")


def test_the_docs_key_table_lists_exactly_the_schemas_keys():
    section = DOCS.read_text().split("## The experiment file")[1].split("###")[0]
    listed = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            listed |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    assert listed == set(experiment_section(Options()).fields)


def test_registered_components_can_be_described():
    # Every registered attack and defense has parameters the schema can derive (a hint no file value fits
    # is left out, not an error), and the parameters the schema accepts are keyword arguments of the function.
    import inspect

    from nrp.defenses.registry import DEFENSES
    from nrp.eval.experiment_schema import attack_parameters, defense_parameters

    for name, function in ATTACKS.items():
        if name not in ("ssp", "fff", "cda"):  # 'adaptive' is the pipeline's: how the attack meets the defense
            inspect.signature(function).bind_partial(**{key: None for key in attack_parameters(name) if key != "adaptive"})
    for name, factory in DEFENSES.items():
        inspect.signature(factory).bind_partial(**{key: None for key in defense_parameters(name)})
