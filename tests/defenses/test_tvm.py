import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from nrp.defenses import TVM, lamb_from_weight, total_variation, tv_minimize, tv_objective, tvm
from nrp.errors import InputError


def objective_numpy(z: np.ndarray, x: np.ndarray, mask: np.ndarray, lamb: float, norm: int) -> float:
    """Guo et al.'s Eq. 4 for one (H, W) channel, written independently (as in ART's TotalVarMin)."""
    fidelity = np.sqrt(((z - x) ** 2 * mask).sum())
    tv = np.linalg.norm(z[1:, :] - z[:-1, :], norm, axis=1).sum() + np.linalg.norm(z[:, 1:] - z[:, :-1], norm, axis=0).sum()
    return fidelity + lamb * tv


def noisy(images, batch=2, size=16):
    generator = torch.Generator().manual_seed(5)
    x = images(batch, size, size, dtype=torch.float64) * 0.2 + 0.4
    return (x + 0.1 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)


def random_mask(x, keep_prob=0.5, seed=0):
    return (torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype) < keep_prob).to(x.dtype)


@pytest.mark.parametrize("norm", [1, 2])
def test_objective_equals_an_independent_implementation(images, norm):
    x, z = images(2, 7, 9, dtype=torch.float64), images(2, 7, 9, dtype=torch.float64)
    mask = random_mask(x)
    expected = [sum(objective_numpy(z[b, c].numpy(), x[b, c].numpy(), mask[b, c].numpy(), 0.07, norm) for c in range(3))
                for b in range(2)]
    assert torch.allclose(tv_objective(z, x, mask, 0.07, norm), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("norm", [1, 2])
def test_lowers_the_objective_below_the_inputs(images, norm):
    x = noisy(images)
    mask = random_mask(x)
    z = tv_minimize(x, mask, 0.05, norm)
    assert (tv_objective(z, x, mask, 0.05, norm) < 0.8 * tv_objective(x, x, mask, 0.05, norm)).all()
    assert (total_variation(z, norm) < total_variation(x, norm)).all()


@pytest.mark.parametrize("norm", [1, 2])
def test_reaches_the_minimum(images, norm):
    # a converged run is a minimum of the convex objective: no small step in any direction lowers it,
    # and a general-purpose optimiser on the independent objective finds nothing lower
    x = noisy(images, batch=1, size=6)[:, :1]
    mask = random_mask(x, 0.6)
    z = tv_minimize(x, mask, 0.05, norm, steps=3000)
    best = tv_objective(z, x, mask, 0.05, norm).item()
    generator = torch.Generator().manual_seed(1)
    for _ in range(200):
        step = 1e-3 * torch.randn(z.shape, generator=generator, dtype=z.dtype)
        assert tv_objective(z + step, x, mask, 0.05, norm).item() >= best - 1e-9
    args = (x[0, 0].numpy(), mask[0, 0].numpy(), 0.05, norm)
    reference = minimize(lambda v: objective_numpy(v.reshape(6, 6), *args), x[0, 0].numpy().ravel(), method="Powell",
                         options={"xtol": 1e-10, "ftol": 1e-12, "maxiter": 200000})
    assert best <= reference.fun + 1e-7


def test_keeping_every_pixel_without_tv_returns_the_input(images):
    x = images(2, 12, 12)
    assert torch.equal(tvm(x, lamb=0.0, keep_prob=1.0), x)
    assert torch.equal(tv_minimize(x, torch.ones_like(x), 0.0, steps=50), x)


def test_constant_image_is_a_fixed_point():
    x = torch.full((1, 3, 10, 10), 0.7)
    assert torch.allclose(tvm(x, lamb=0.5, keep_prob=0.3), x, atol=1e-6)


def test_a_larger_lambda_smooths_more(images):
    x = noisy(images)
    mask = random_mask(x)
    tv = [total_variation(tv_minimize(x, mask, lamb)).sum().item() for lamb in (0.01, 0.03, 0.1)]
    assert tv[0] > tv[1] > tv[2]


def test_batch_equals_images_one_by_one(images):
    x = noisy(images, batch=3)
    mask = random_mask(x)
    together = tv_minimize(x, mask, 0.03)
    for index in range(3):
        alone = tv_minimize(x[index : index + 1], mask[index : index + 1], 0.03)
        assert torch.allclose(together[index : index + 1], alone, atol=1e-12)


def test_mask_is_drawn_from_the_generator(images):
    x = noisy(images).float()
    expected_mask = (torch.rand(x.shape, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    expected = tv_minimize(x, expected_mask, 0.03).clamp(0, 1)
    assert torch.equal(tvm(x, 0.03, keep_prob=0.3, generator=torch.Generator().manual_seed(4)), expected)


def test_reproducible_with_a_seed_and_random_without(images):
    x = noisy(images).float()
    first = TVM(generator=torch.Generator().manual_seed(0))(x)
    again = TVM(generator=torch.Generator().manual_seed(0))(x)
    assert torch.equal(first, again)
    module = TVM(generator=torch.Generator().manual_seed(0))
    assert not torch.equal(module(x), module(x))  # a fresh mask on every call


def test_result_is_detached(images):
    x = images().requires_grad_(True)
    assert not tvm(x).requires_grad


def test_weight_mapping():
    assert lamb_from_weight(10) == 0.03
    assert lamb_from_weight(30) == 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lamb": -0.1}, "lamb"), ({"keep_prob": 0.0}, "keep_prob"), ({"keep_prob": 1.2}, "keep_prob"),
     ({"norm": 3}, "norm"), ({"steps": -1}, "steps")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(InputError, match=match):
        TVM(**kwargs)


def test_mask_shape_must_match(images):
    with pytest.raises(InputError, match="mask"):
        tv_minimize(images(2, 8, 8), torch.ones(1, 3, 8, 8))
