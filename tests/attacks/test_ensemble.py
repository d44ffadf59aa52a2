import pytest
import torch
from torch import nn

from nrp.attacks import ATTACKS, Ensemble, mi_fgsm
from nrp.errors import InputError


def test_the_ensemble_averages_its_members_logits(make_images, make_classifier):
    members = [make_classifier(seed=seed) for seed in (0, 1, 2)]
    x = make_images(0)
    expected = sum(member(x) for member in members) / 3
    assert torch.allclose(Ensemble(members)(x), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "mi_fgsm", "dim_ti_fgsm"])
def test_attacking_a_model_twice_over_equals_attacking_it_once(name, classifier, make_images):
    x = make_images(1)
    attack = ATTACKS[name]
    once = attack(classifier, x, generator=torch.Generator().manual_seed(0))
    twice = attack([classifier, classifier], x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(once, twice)


def test_an_ensemble_attack_differs_from_attacking_one_member(make_images, make_classifier):
    first, second = make_classifier(seed=0), make_classifier(seed=1)
    x = make_images(2)
    assert not torch.equal(mi_fgsm([first, second], x), mi_fgsm(first, x))


def test_the_ensemble_leaves_its_members_modes_alone(make_images, make_classifier):
    first, second = make_classifier(seed=0).train(), make_classifier(seed=1)
    mi_fgsm([first, second], make_images(3))
    assert first.training and not second.training


def test_an_ensemble_needs_modules():
    with pytest.raises(InputError, match="at least one model"):
        Ensemble([])
    with pytest.raises(InputError, match="member 1 is function"):
        Ensemble([nn.Identity(), lambda x: x])
