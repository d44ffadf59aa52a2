import pytest
import torch
from scipy.ndimage import gaussian_filter

from nrp.defenses import GaussianBlur, gaussian_blur
from nrp.defenses.gaussian import default_kernel_size, gaussian_kernel1d
from nrp.errors import InputError


@pytest.mark.parametrize(("sigma", "kernel_size"), [(1.0, None), (0.6, 3), (2.0, 9)])
def test_equals_scipy(images, sigma, kernel_size):
    x = images(2, 17, 15, dtype=torch.float64)
    size = default_kernel_size(sigma) if kernel_size is None else kernel_size
    expected = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="reflect", truncate=(size // 2) / sigma)
    assert torch.allclose(gaussian_blur(x, sigma, kernel_size), torch.from_numpy(expected), atol=1e-12)


def test_constant_image_is_unchanged():
    x = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(GaussianBlur(1.5)(x), x, atol=1e-7)


def test_interior_impulse_keeps_its_mass_and_spreads_as_the_kernel():
    x = torch.zeros(1, 3, 21, 21, dtype=torch.float64)
    x[..., 10, 10] = 1.0
    y = gaussian_blur(x, 1.0, 7)
    assert torch.allclose(y.sum(dim=(-2, -1)), torch.ones(1, 3, dtype=torch.float64))
    kernel = torch.exp(-0.5 * torch.arange(-3, 4, dtype=torch.float64) ** 2)
    kernel = kernel / kernel.sum()
    assert torch.allclose(y[0, 0, 7:14, 7:14], torch.outer(kernel, kernel))
    assert torch.allclose(gaussian_kernel1d(1.0, 7, torch.float64), kernel)


def test_default_kernel_size():
    assert [default_kernel_size(s) for s in (0.5, 1.0, 1.2, 2.0)] == [5, 7, 9, 13]


def test_gradcheck():
    x = torch.rand(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: gaussian_blur(t * 0.5 + 0.25, 1.0, 3), (x,))


@pytest.mark.parametrize("kwargs", [{"sigma": 0.0}, {"sigma": -1.0}, {"sigma": float("nan")}, {"kernel_size": 4}])
def test_bad_parameters(kwargs):
    with pytest.raises(InputError, match="sigma|kernel_size"):
        GaussianBlur(**kwargs)
