"""SSP's ``input_size`` in an experiment: accepted by the schema, part of the set's identity and source name."""

from __future__ import annotations

import pytest

from nrp.eval.components import Component
from nrp.eval.crafting import Crafter
from nrp.eval.experiment_schema import check_experiment
from nrp.eval.models import ModelBank
from nrp.eval.sets import attack_source
from nrp.errors import NRPError

SSP = {"name": "ssp", "backbone": "vgg16", "layer": "conv1_2", "label": "SSP"}


def identity_of(params: dict) -> dict:
    crafter = Crafter(ModelBank("cpu", {}), seed=0)

    class Planned:  # the two fields Crafter.identity reads of an ImageSet
        attack = Component.parse({**SSP, **params}, "attack")
        eps = 16.0
    return crafter.identity(Planned(), [])


def test_input_size_is_recorded_only_when_given_so_earlier_sets_keep_their_fingerprints():
    assert identity_of({}) == {"backbone": "vgg16", "layer": "conv1_2", "weights": "published"}
    assert identity_of({"input_size": 224}) == {"backbone": "vgg16", "layer": "conv1_2", "weights": "published",
                                                 "input_size": 224}
    assert attack_source(Component.parse({**SSP, "input_size": 224}, "attack")) == "vgg16:conv1_2@224"
    assert attack_source(Component.parse(SSP, "attack")) == "vgg16:conv1_2"


def test_the_schema_takes_a_positive_input_size_for_ssp_only():
    check_experiment({"images": "i", "out": "o", "targets": ["vgg16"], "attacks": [{**SSP, "input_size": 224}]})
    with pytest.raises(NRPError, match=r"attacks\[0\].input_size"):
        check_experiment({"images": "i", "out": "o", "targets": ["vgg16"], "attacks": [{**SSP, "input_size": 0}]})
    with pytest.raises(NRPError, match=r"attacks\[0\].*input_size"):
        check_experiment({"images": "i", "out": "o", "targets": ["vgg16"], "attacks": [{"name": "fgsm", "input_size": 224}]})


def test_the_crafter_runs_ssp_on_the_extractor_of_that_input_size():
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return self.conv(x)

    sized, plain = Recorder(), Recorder()
    crafter = Crafter(ModelBank("cpu", {}, {"tiny:f@12": sized, "tiny:f": plain}), seed=0)

    class Planned:
        attack = Component.parse({"name": "ssp", "backbone": "tiny", "layer": "f", "input_size": 12, "steps": 2,
                                  "label": "SSP"}, "attack")
        eps = 16.0
    x = torch.rand(1, 3, 16, 16)
    x_adv = crafter._attack(Planned(), ["a"])(x, None, None, torch.Generator().manual_seed(0), range(1))
    assert sized.calls == 3 and plain.calls == 0  # clean features once, then one forward per step
    assert x_adv.shape == x.shape and float((x_adv - x).abs().max()) <= 16 / 255 + 1e-6


def test_a_cross_task_section_takes_ssp_with_an_input_size(tmp_path):
    from nrp.eval.cross_task_config import CrossTaskConfig
    cross = CrossTaskConfig.parse({"images": str(tmp_path), "masks": str(tmp_path), "segmenters": ["fcn"],
                                   "attacks": [{**SSP, "input_size": 224, "steps": 2}]}, [16])
    assert cross.attack_components()[0].params["input_size"] == 224
