"""An assembled attack has its template's parameters plus its knobs', and hands each call's values to its run."""

import inspect
import typing

import pytest

from nrp.attacks import admix, bsr, fia, ilpd, mi_fgsm, naa
from nrp.attacks.assembled import assemble


def template(model, x, y=None, eps=0.1, *, steps=10, target=None, generator=None):
    """The shared parameters."""


def knobs(x, *, copies=3, angle=24.0, generator=None):
    """The attack's own."""


def test_knobs_go_before_target_and_generator_and_calls_bind_like_a_function():
    seen = []
    attack = assemble("mine", "Mine.", template, knobs, lambda arguments, own: seen.append((arguments, own)) or 0)
    assert str(inspect.signature(attack)) == "(model, x, y=None, eps=0.1, *, steps=10, copies=3, angle=24.0, target=None, generator=None) -> torch.Tensor"
    attack("m", "x", copies=5, generator="g")
    assert seen == [({"model": "m", "x": "x", "y": None, "eps": 0.1, "steps": 10, "target": None, "generator": "g"},
                     {"copies": 5, "angle": 24.0})]
    with pytest.raises(TypeError, match="unexpected keyword argument 'cpies'"):
        attack("m", "x", cpies=5)
    assert attack.__name__ == "mine" and attack.__doc__ == "Mine."


def test_dropped_template_parameters_are_not_taken():
    attack = assemble("mine", "Mine.", template, knobs, lambda arguments, own: 0, drop=("target", "generator"))
    assert list(inspect.signature(attack).parameters) == ["model", "x", "y", "eps", "steps", "copies", "angle", "generator"]


def test_the_transfer_attacks_keep_the_calling_convention_with_each_knob_once():
    shared = list(inspect.signature(mi_fgsm).parameters)
    expected = {
        admix: shared[:-2] + ["portion", "copies", "scales"] + shared[-2:],
        bsr: shared[:-2] + ["copies", "blocks", "max_angle"] + shared[-2:],
        fia: shared[:-2] + ["layer", "ensemble", "drop_prob", "generator"],
        naa: shared[:-2] + ["layer", "path_steps", "gamma"],
        ilpd: shared[:-2] + ["layer", "coef", "sigma", "generator"],
    }
    for attack, names in expected.items():
        assert list(inspect.signature(attack).parameters) == names, attack.__name__
    assert inspect.signature(admix).parameters["portion"].default == 0.2
    assert inspect.signature(fia).parameters["layer"].default is inspect.Parameter.empty


def test_type_hints_resolve_so_experiment_files_are_checked_by_type():
    hints = typing.get_type_hints(fia)
    assert hints["steps"] is int and hints["layer"] is str and hints["drop_prob"] is float
    assert typing.get_type_hints(admix)["portion"] is float
