import pytest
import torch
from scipy.ndimage import median_filter

from nrp.defenses import MedianBlur, median_blur
from nrp.errors import InputError


@pytest.mark.parametrize("window", [3, 5, 7])
@pytest.mark.parametrize("levels", [None, 4])
def test_equals_scipy_everywhere(images, window, levels):
    x = images(2, 13, 17)
    if levels is not None:  # many ties
        x = torch.round(x * levels) / levels
    expected = median_filter(x.numpy(), size=(1, 1, window, window), mode="reflect")
    assert torch.equal(median_blur(x, window), torch.from_numpy(expected))


def test_window_one_is_the_identity(images):
    x = images()
    assert torch.equal(MedianBlur(1)(x), x)


def test_window_one_pixel_images():
    x = torch.rand(2, 3, 1, 1)
    assert torch.equal(median_blur(x, 3), x)


def test_removes_isolated_outliers_and_keeps_edges():
    x = torch.zeros(1, 3, 8, 8)
    x[..., :, 4:] = 1.0  # a vertical edge
    noisy = x.clone()
    noisy[..., 2, 1] = 1.0  # salt
    noisy[..., 5, 6] = 0.0  # pepper
    assert torch.equal(median_blur(noisy, 3), x)


@pytest.mark.parametrize("window", [3, 5])
def test_gradient_reaches_the_median_pixels(images, window):
    x = images(1, 5, 5, dtype=torch.float64).requires_grad_(True)
    torch.autograd.gradcheck(lambda t: median_blur(t, window), (x,))


@pytest.mark.parametrize("window", [0, 2, 4, -1, 3.0, True])
def test_bad_window(window):
    with pytest.raises(InputError, match="window"):
        MedianBlur(window)


def test_window_larger_than_the_image():
    with pytest.raises(InputError, match="too large"):
        median_blur(torch.rand(1, 3, 4, 4), 11)
