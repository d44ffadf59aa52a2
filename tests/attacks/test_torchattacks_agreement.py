"""Agreement with torchattacks 3.5 on the same model, inputs and labels, and its known differences.

Random choices (PGD's start, R-FGSM's random step, DIM's resize and pad) are drawn from torch's global
generator in torchattacks' order when ``generator=None``, so reseeding before each call gives both the same
draws. The comparisons run in float64, where float rounding cannot flip a gradient sign.
"""

import pytest
import torch

from nrp.attacks import dim, dim_ti_fgsm, fgsm, i_fgsm, iterative_attack, mi_fgsm, mi_ti_fgsm, pgd, r_fgsm

torchattacks = pytest.importorskip("torchattacks")

EPS, ALPHA, STEPS = 16 / 255, 1.6 / 255, 10
LABELS = torch.tensor([0, 3, 5, 9])


def same_seed(seed, ours, theirs):
    torch.manual_seed(seed)
    a = ours()
    torch.manual_seed(seed)
    b = theirs()
    return a, b


@pytest.fixture
def x(make_images):
    return make_images(0, dtype=torch.float64)


def test_fgsm(classifier64, x):
    ours = fgsm(classifier64, x, LABELS, eps=EPS)
    assert torch.equal(ours, torchattacks.FGSM(classifier64, eps=EPS)(x, LABELS))


def test_i_fgsm_equals_bim_bit_for_bit_in_float32(classifier, make_images):
    x32 = make_images(1)
    ours = i_fgsm(classifier, x32, LABELS, eps=EPS, step_size=ALPHA, steps=STEPS)
    theirs = torchattacks.BIM(classifier, eps=EPS, alpha=ALPHA, steps=STEPS)(x32, LABELS)
    assert torch.equal(ours, theirs)


def test_pgd_without_random_start(classifier64, x):
    ours = pgd(classifier64, x, LABELS, eps=EPS, step_size=2 / 255, steps=STEPS, random_start=False)
    theirs = torchattacks.PGD(classifier64, eps=EPS, alpha=2 / 255, steps=STEPS, random_start=False)(x, LABELS)
    # torchattacks projects as x + clip(x_adv - x, -eps, eps); we clip x_adv to [x - eps, x + eps] directly.
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_pgd_with_the_same_random_start(classifier64, x):
    attack = torchattacks.PGD(classifier64, eps=EPS, alpha=2 / 255, steps=STEPS, random_start=True)
    ours, theirs = same_seed(1, lambda: pgd(classifier64, x, LABELS), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_targeted_pgd(classifier64, x):
    target = torch.tensor([1, 1, 2, 2])
    attack = torchattacks.PGD(classifier64, eps=EPS, alpha=2 / 255, steps=STEPS, random_start=False)
    attack.set_mode_targeted_by_function(lambda images, labels: target)  # the API of 3.3 and 3.5 alike
    ours = pgd(classifier64, x, LABELS, target=target, random_start=False)
    assert torch.allclose(ours, attack(x, LABELS), atol=1e-15, rtol=0)


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_mi_fgsm(classifier64, x, decay):
    ours = mi_fgsm(classifier64, x, LABELS, momentum=decay)
    theirs = torchattacks.MIFGSM(classifier64, eps=EPS, alpha=ALPHA, steps=STEPS, decay=decay)(x, LABELS)
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


@pytest.mark.parametrize("decay", [1.0, 0.0])
def test_dim_with_the_same_draws(classifier64, x, decay):
    attack = torchattacks.DIFGSM(classifier64, eps=EPS, alpha=ALPHA, steps=STEPS, decay=decay, resize_rate=0.9,
                                 diversity_prob=0.7)
    ours, theirs = same_seed(2, lambda: dim(classifier64, x, LABELS, momentum=decay), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_dim_enlarging_like_xie_et_al(classifier64, x):
    attack = torchattacks.DIFGSM(classifier64, eps=EPS, alpha=ALPHA, steps=STEPS, decay=1.0, resize_rate=1.5,
                                 diversity_prob=0.7)
    ours, theirs = same_seed(3, lambda: dim(classifier64, x, LABELS, diversity_scale=1.5), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def tifgsm(model, **options):
    attack = torchattacks.TIFGSM(model, eps=EPS, alpha=ALPHA, steps=STEPS, **options)
    attack.stacked_kernel = attack.stacked_kernel.double()  # built in float32; our comparisons run in float64
    return attack


def test_ti_mi_fgsm(classifier64, x):
    attack = tifgsm(classifier64, decay=1.0, len_kernel=7, diversity_prob=0.0)
    ours, theirs = same_seed(4, lambda: mi_ti_fgsm(classifier64, x, LABELS, ti_kernel=7), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_ti_dim_the_papers_dim_ti(classifier64, x):
    attack = tifgsm(classifier64, decay=1.0, len_kernel=15, diversity_prob=0.7, resize_rate=0.9)
    ours, theirs = same_seed(5, lambda: dim_ti_fgsm(classifier64, x, LABELS), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_ti_kernel_is_torchattacks_gaussian():
    from nrp.attacks import gaussian_kernel1d

    for size in (1, 3, 7, 15):
        theirs = torch.from_numpy(torchattacks.TIFGSM.gkern(None, size, 3))
        k = gaussian_kernel1d(size, dtype=torch.float64)
        assert torch.allclose(torch.outer(k, k), theirs, atol=1e-15, rtol=0)


def test_r_fgsm_equals_torchattacks_when_alpha_is_half_of_eps(classifier64, x):
    # torchattacks' RFGSM takes its random step and its gradient step with the same alpha.
    attack = torchattacks.RFGSM(classifier64, eps=EPS, alpha=EPS / 2, steps=1)
    ours, theirs = same_seed(6, lambda: r_fgsm(classifier64, x, LABELS, alpha=EPS / 2), lambda: attack(x, LABELS))
    assert torch.allclose(ours, theirs, atol=1e-15, rtol=0)


def test_r_fgsm_known_difference_torchattacks_cannot_take_the_papers_steps(classifier64, make_images):
    # Appendix F: random step 16/3, then a gradient step of 16 - 16/3 = 32/3. torchattacks' RFGSM(alpha=16/3)
    # takes 16/3 twice, so it never uses more than 32/3 of the 16/255 budget.
    x = torch.full((4, 3, 16, 16), 0.5, dtype=torch.float64)
    ours = r_fgsm(classifier64, x, LABELS)
    theirs = torchattacks.RFGSM(classifier64, eps=EPS, alpha=EPS / 3, steps=1)(x, LABELS)
    assert (ours - x).abs().max() == pytest.approx(EPS, abs=1e-12)
    assert (theirs - x).abs().max() == pytest.approx(2 * EPS / 3, abs=1e-12)


def test_the_loop_with_every_option_off_is_bim(classifier64, x):
    ours = iterative_attack(classifier64, x, LABELS, eps=EPS, step_size=ALPHA, steps=STEPS)
    assert torch.equal(ours, torchattacks.BIM(classifier64, eps=EPS, alpha=ALPHA, steps=STEPS)(x, LABELS))
