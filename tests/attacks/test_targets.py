import pytest
import torch

from nrp.attacks import random_targets
from nrp.errors import InputError


def test_random_targets_never_equal_the_labels_and_cover_the_other_classes():
    labels = torch.arange(10).repeat(200)
    targets = random_targets(labels, 10, torch.Generator().manual_seed(0))
    assert (targets != labels).all() and targets.min() >= 0 and targets.max() < 10
    counts = torch.bincount(targets[labels == 3], minlength=10)
    assert counts[3] == 0 and (counts[[0, 1, 2, 4, 5, 6, 7, 8, 9]] > 5).all()


def test_random_targets_are_reproducible_with_a_generator():
    labels = torch.randint(0, 1000, (64,))
    draws = [random_targets(labels, 1000, torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_random_targets_refuse_labels_out_of_range():
    with pytest.raises(InputError, match=r"labels must be in \[0, 5\), got values in \[0, 7\]"):
        random_targets(torch.tensor([0, 7]), 5)
