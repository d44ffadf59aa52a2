"""FIA, NAA, ILPD, Admix and BSR against torchattack 1.7 (spencerwooo/torchattack) on a tiny model.

FIA's masks, ILPD's noise and Admix's permutations are drawn from torch's global generator in torchattack's
order when ``generator=None``, so reseeding before each call aligns the draws; NAA draws nothing. These run
in float64 and agree to float rounding. BSR's draws come from Python's and NumPy's generators in torchattack,
so it is compared by a statistical property instead (see its test).
"""

import random

import numpy
import pytest
import torch
from torch import nn

from nrp.attacks import admix, bsr, bsr_copies, fia, ilpd, naa

torchattack = pytest.importorskip("torchattack")

EPS = 16 / 255
LABELS = torch.tensor([0, 3, 5, 9])
LAYER = "3"
COPIES = 200  # the second convolution of the tiny classifier


@pytest.fixture
def x(make_images):
    return make_images(0, dtype=torch.float64)


def seeded(seed, run):
    torch.manual_seed(seed)
    return run()


def close(ours, theirs):
    # torchattack projects the perturbation, x + clip(delta), we clip x_adv: equal up to float rounding.
    return torch.allclose(ours, theirs.detach(), atol=1e-12, rtol=0)


def test_fia_with_the_same_masks(classifier64, x):
    theirs = torchattack.FIA(classifier64, device=torch.device("cpu"), eps=EPS, feature_layer_cfg=LAYER)
    ours = seeded(1, lambda: fia(classifier64, x, LABELS, layer=LAYER))
    assert close(ours, seeded(1, lambda: theirs(x, LABELS)))
    assert (ours - x).abs().max() > EPS / 2  # it moved


def test_fia_depends_on_the_masks(classifier64, x):
    assert not torch.equal(seeded(1, lambda: fia(classifier64, x, LABELS, layer=LAYER)),
                           seeded(2, lambda: fia(classifier64, x, LABELS, layer=LAYER)))


def test_naa(classifier64, x):
    theirs = torchattack.NAA(classifier64, device=torch.device("cpu"), eps=EPS, feature_layer_cfg=LAYER)(x, LABELS)
    assert close(naa(classifier64, x, LABELS, layer=LAYER), theirs)


def test_naa_gamma_weighs_the_negative_attributions(classifier64, x):
    plain = naa(classifier64, x, LABELS, layer=LAYER)
    assert not torch.equal(naa(classifier64, x, LABELS, layer=LAYER, gamma=0.0), plain)


def test_ilpd_with_the_same_noise(classifier64, x):
    theirs = torchattack.ILPD(classifier64, device=torch.device("cpu"), eps=EPS, feature_layer_cfg=LAYER)
    ours = seeded(3, lambda: ilpd(classifier64, x, LABELS, layer=LAYER))
    assert close(ours, seeded(3, lambda: theirs(x, LABELS)))


@pytest.mark.parametrize("pass_size", [{}, {"pass_size": None}, {"pass_size": 7}, {"pass_size": 1}])
def test_admix_with_the_same_permutations(classifier64, x, pass_size):
    # The 60 copies of 4 images in passes of 5 (the default), all at once, 7 (a ragged last pass) or 1.
    theirs = torchattack.Admix(classifier64, device=torch.device("cpu"), eps=EPS, num_classes=10)
    ours = seeded(4, lambda: admix(classifier64, x, LABELS, **pass_size))
    assert close(ours, seeded(4, lambda: theirs(x, LABELS)))


def all_seeded(seed, run):
    """torchattack's BSR draws from Python's, NumPy's and torch's generators."""
    random.seed(seed)
    numpy.random.seed(seed)
    return seeded(seed, run)


def sign_agreement(a, b, x):
    return ((a - x).sign() == (b - x).sign()).double().mean().item()


def test_bsr_steps_agree_with_torchattack_as_often_as_torchattack_agrees_with_itself(classifier64, x):
    # One step of size eps is sign(E_T[grad]) estimated from 20 random copies. If both libraries sample the
    # same distribution of transformations, our step agrees in sign with theirs about as often as two of
    # their runs agree with each other. Measured: 0.757 theirs-theirs, 0.767 ours-ours, 0.725 ours-theirs; the gap
    # is the block lengths' draw (torchattack's weights come from U(1, 2), ours from U(0, 1) as TransferAttack's):
    # with U(1, 2) weights ours-theirs is 0.755.
    # 200 copies instead of 20 make the estimate precise enough for the comparison to mean something.
    theirs = torchattack.BSR(classifier64, device=torch.device("cpu"), eps=EPS, steps=1, alpha=EPS, num_scale=COPIES)
    runs = [all_seeded(s, lambda: theirs(x, LABELS).detach()) for s in range(3)]
    ours = [bsr(classifier64, x, LABELS, steps=1, step_size=EPS, copies=COPIES, generator=torch.Generator().manual_seed(s))
            for s in range(3)]
    same_library = sum(sign_agreement(runs[i], runs[(i + 1) % 3], x) for i in range(3)) / 3
    across = sum(sign_agreement(ours[i], runs[i], x) for i in range(3)) / 3
    assert same_library > 0.75  # the step is not noise
    assert across > same_library - 0.05


def test_bsr_without_rotation_permutes_blocks_of_the_image():
    x = torch.arange(2 * 3 * 12 * 12, dtype=torch.float64).view(2, 3, 12, 12) / 864
    copies = bsr_copies(x, copies=4, max_angle=0.0, generator=torch.Generator().manual_seed(0))
    assert copies.shape == (8, 3, 12, 12)
    for index, copy in enumerate(copies):
        source = x[index % 2]
        assert torch.allclose(copy.flatten().sort().values, source.flatten().sort().values, atol=1e-12)  # grid_sample rounding
    assert not torch.equal(copies[0], x[0])


def test_bsr_rotations_are_drawn_within_the_angle():
    x = torch.zeros(1, 1, 33, 33, dtype=torch.float64)
    x[..., 16, 12:21] = 1.0  # a horizontal bar
    one_block = bsr_copies(x, copies=50, blocks=1, max_angle=10.0, generator=torch.Generator().manual_seed(0))
    rows = one_block[:, 0].nonzero()
    # a 9-px bar rotated by at most 10 degrees spans at most 4.5 * sin(10 deg) ~ 0.8 px either side of row 16
    assert rows[:, 1].sub(16).abs().max() <= 2
