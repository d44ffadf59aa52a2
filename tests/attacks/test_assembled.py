"""An assembled attack has its template's parameters plus its knobs', and hands each call's values to its run."""

import importlib
import inspect
import typing

import pytest
import torch

from nrp.attacks import admix, bsr, fia, ila, ilpd, mi_fgsm, naa
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
        admix: shared[:-2] + ["portion", "copies", "scales", "pass_size"] + shared[-2:],
        bsr: shared[:-2] + ["copies", "blocks", "max_angle"] + shared[-2:],
        fia: shared[:-2] + ["layer", "ensemble", "drop_prob", "generator"],
        naa: shared[:-2] + ["layer", "path_steps", "gamma"],
        ilpd: shared[:-2] + ["layer", "coef", "sigma", "generator"],
        ila: shared[:-2] + ["layer", "ila_steps", "baseline"],
    }
    for attack, names in expected.items():
        assert list(inspect.signature(attack).parameters) == names, attack.__name__
    assert inspect.signature(admix).parameters["portion"].default == 0.2
    assert inspect.signature(fia).parameters["layer"].default is inspect.Parameter.empty


def test_type_hints_resolve_so_experiment_files_are_checked_by_type():
    hints = typing.get_type_hints(fia)
    assert hints["steps"] is int and hints["layer"] is str and hints["drop_prob"] is float
    assert typing.get_type_hints(admix)["portion"] is float


LABELS = torch.tensor([0, 3, 5, 9])


def test_each_knob_reaches_its_attack(classifier64, make_images, monkeypatch):
    x = make_images(0, dtype=torch.float64)
    plain = mi_fgsm(classifier64, x, LABELS)
    # Known answers: one unscaled copy with no admixture is the image itself; coef 1 leaves the layer alone.
    assert torch.equal(admix(classifier64, x, LABELS, copies=1, scales=1, portion=0.0), plain)
    assert torch.equal(ilpd(classifier64, x, LABELS, layer="3", coef=1.0), plain)
    assert not torch.equal(admix(classifier64, x, LABELS, copies=1, scales=2, portion=0.0), plain)
    torch.manual_seed(0)
    default = fia(classifier64, x, LABELS, layer="3")
    torch.manual_seed(0)
    assert not torch.equal(fia(classifier64, x, LABELS, layer="3", drop_prob=0.0), default)
    assert not torch.equal(naa(classifier64, x, LABELS, layer="3", path_steps=3), naa(classifier64, x, LABELS, layer="3"))
    bsr_module = importlib.import_module("nrp.attacks.bsr")  # the attribute nrp.attacks.bsr is the function
    seen = []
    real = bsr_module.bsr_copies
    monkeypatch.setattr(bsr_module, "bsr_copies", lambda x_t, **kw: seen.append(kw) or real(x_t, **kw))
    bsr(classifier64, x, LABELS, steps=1, copies=2, blocks=2, max_angle=5.0)
    assert [{k: v for k, v in kw.items() if k != "generator"} for kw in seen] == [{"copies": 2, "blocks": 2, "max_angle": 5.0}]
