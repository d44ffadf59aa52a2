"""The AutoAttack adapter gives torchattacks' own result, directly and through a randomised defense."""

import pytest
import torch
from torch import nn

from nrp.attacks import DefendedModel, apgd, autoattack
from nrp.errors import InputError

torchattacks = pytest.importorskip("torchattacks")

EPS = 8 / 255
LABELS = torch.tensor([0, 3, 5, 9])


class NoisyDefense(nn.Module):
    """A randomised [0, 1] -> [0, 1] defense drawing from the global generator (as EOT sees it)."""

    def forward(self, x):
        return (x + 0.02 * torch.randn_like(x)).clamp(0, 1)


def test_standard_version_equals_torchattacks(classifier, make_images):
    x = make_images(0)
    y = classifier(x).argmax(1)  # all correct at first, so every member has work to do
    theirs = torchattacks.AutoAttack(classifier, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=3)(x, y)
    ours = autoattack(classifier, x, eps=EPS, num_classes=10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, theirs)
    assert (ours - x).abs().max() <= EPS + 1e-6
    assert (classifier(ours).argmax(1) != y).any()


def test_rand_version_through_a_randomised_defense_equals_torchattacks(classifier, make_images):
    x = make_images(1)
    y = classifier(x).argmax(1)
    defended = DefendedModel(NoisyDefense(), classifier, gradient="full")
    torch.manual_seed(5)
    theirs = torchattacks.AutoAttack(defended, norm="Linf", eps=EPS, version="rand", n_classes=10, seed=4)(x, y)
    torch.manual_seed(5)
    ours = autoattack(defended, x, y, eps=EPS, version="rand", num_classes=10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, x)


def test_rand_version_with_other_eot_draws_equals_torchattacks_with_as_many(classifier, make_images):
    x = make_images(1)
    y = classifier(x).argmax(1)
    defended = DefendedModel(NoisyDefense(), classifier, gradient="full")
    torch.manual_seed(5)
    reference = torchattacks.AutoAttack(defended, norm="Linf", eps=EPS, version="rand", n_classes=10, seed=4)
    for member in reference._autoattack.attacks:
        member.eot_iter = 3
    theirs = reference(x, y)
    torch.manual_seed(5)
    ours = autoattack(defended, x, y, eps=EPS, version="rand", num_classes=10, eot_draws=3,
                      generator=torch.Generator().manual_seed(4))
    assert torch.equal(ours, theirs)


def test_steps_and_queries_reach_every_member(classifier, make_images, monkeypatch):
    seen = []
    real = torchattacks.MultiAttack.forward

    def spy(self, *args):
        seen.extend((getattr(m, "steps", None), getattr(m, "n_queries", None)) for m in self.attacks)
        return real(self, *args)

    monkeypatch.setattr(torchattacks.MultiAttack, "forward", spy)
    autoattack(classifier, make_images(2), LABELS, eps=EPS, num_classes=10, steps=3, queries=7)  # wrong labels: fast
    assert seen == [(3, None), (3, None), (3, None), (None, 7)]  # APGD-CE, APGD-T, FAB-T; Square counts queries


@pytest.mark.parametrize("loss, eot", [("ce", 1), ("dlr", 3)])
def test_apgd_equals_torchattacks_apgd_directly_and_with_eot_through_a_randomised_defense(classifier, make_images,
                                                                                          loss, eot):
    x = make_images(5)
    y = classifier(x).argmax(1)
    model = classifier if eot == 1 else DefendedModel(NoisyDefense(), classifier, gradient="full")
    torch.manual_seed(6)
    theirs = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=4, n_restarts=1, seed=2, loss=loss, eot_iter=eot)(x, y)
    torch.manual_seed(6)
    ours = apgd(model, x, y, eps=EPS, loss=loss, steps=4, eot_draws=eot, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ours, theirs)
    assert (ours - x).abs().max() <= EPS + 1e-6 and not torch.equal(ours, x)


def test_unknown_apgd_losses_are_refused(classifier, make_images):
    with pytest.raises(InputError, match="unknown APGD loss 'cw'; known: ce, dlr"):
        apgd(classifier, make_images(3), loss="cw")


def test_unknown_versions_are_refused(classifier, make_images):
    with pytest.raises(InputError, match="unknown AutoAttack version 'plus'; known: standard, rand"):
        autoattack(classifier, make_images(3), version="plus")


def test_float64_is_refused_in_one_line(classifier, make_images):
    # torchattacks casts to float32 inside; bounds are checked in the equality tests above.
    with pytest.raises(InputError, match="computes in float32"):
        autoattack(classifier.double(), make_images(4).double())
