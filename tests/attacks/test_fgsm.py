import pytest
import torch
import torchattacks
from torch import nn

from nrp.attacks import fgsm
from nrp.errors import InputError


@pytest.fixture
def classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10)).eval()


def test_fgsm_equals_torchattacks_with_the_same_labels(classifier):
    x = torch.rand(4, 3, 16, 16)
    labels = torch.tensor([0, 3, 5, 9])
    classifier(x)  # materialise the lazy layer
    ours = fgsm(classifier, x, labels, eps=8 / 255)
    theirs = torchattacks.FGSM(classifier, eps=8 / 255)(x, labels)
    assert torch.allclose(ours, theirs, atol=1e-7)


def test_label_free_fgsm_attacks_the_models_own_prediction(classifier):
    x = torch.rand(4, 3, 16, 16)
    predicted = classifier(x).argmax(1)
    assert torch.equal(fgsm(classifier, x, eps=4 / 255), fgsm(classifier, x, predicted, eps=4 / 255))
    x_adv = fgsm(classifier, x, eps=4 / 255)
    loss = nn.functional.cross_entropy
    assert loss(classifier(x_adv), predicted) > loss(classifier(x), predicted)
    assert (x_adv - x).abs().max() <= 4 / 255 + 1e-7 and 0 <= x_adv.min() and x_adv.max() <= 1


def test_fgsm_refuses_eps_outside_the_unit_interval(classifier):
    with pytest.raises(InputError, match=r"eps must be in \[0, 1\]"):
        fgsm(classifier, torch.rand(1, 3, 16, 16), eps=16)

