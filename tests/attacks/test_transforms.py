import pytest
import torch
from torch.nn import functional as F

from nrp.attacks import gaussian_kernel1d, input_diversity, smooth_gradient
from nrp.attacks.transforms import band_matrix, diversity_bounds, smooth_gradient_conv
from nrp.errors import InputError


def depthwise(gradient, kernel):
    """The authors' / torchattacks' TI smoothing: one depthwise 2-D convolution, zero padding."""
    k, channels = kernel.numel(), gradient.shape[1]
    return F.conv2d(gradient, torch.outer(kernel, kernel).expand(channels, 1, k, k), padding=k // 2, groups=channels)


@pytest.mark.parametrize("size", [1, 3, 7, 15])
def test_gaussian_kernel_sums_to_one_is_symmetric_and_spans_three_sigmas(size):
    k = gaussian_kernel1d(size, dtype=torch.float64)
    assert k.shape == (size,) and k.sum().item() == pytest.approx(1.0, abs=1e-15)
    assert torch.equal(k, k.flip(0))
    if size > 1:  # the end samples sit at +-3 sigma: exp(-4.5) of the centre
        assert (k[0] / k[size // 2]).item() == pytest.approx(torch.exp(torch.tensor(-4.5, dtype=torch.float64)).item())


@pytest.mark.parametrize("size", [1, 3, 7, 15])
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 9, 20)])
def test_both_smoothing_paths_equal_a_depthwise_convolution(size, shape):
    gradient = torch.randn(shape, generator=torch.Generator().manual_seed(size), dtype=torch.float64)
    kernel = gaussian_kernel1d(size, dtype=torch.float64)
    expected = depthwise(gradient, kernel)
    assert torch.allclose(smooth_gradient(gradient, kernel), expected, atol=1e-14, rtol=0)
    assert torch.allclose(smooth_gradient_conv(gradient, kernel), expected, atol=1e-14, rtol=0)


def test_smoothing_an_impulse_gives_the_kernel_and_a_1x1_kernel_changes_nothing():
    impulse = torch.zeros(1, 3, 21, 21, dtype=torch.float64)
    impulse[:, :, 10, 10] = 1.0
    k = gaussian_kernel1d(15, dtype=torch.float64)
    assert torch.allclose(smooth_gradient(impulse, k)[0, 1, 3:18, 3:18], torch.outer(k, k), atol=1e-16)
    gradient = torch.randn(2, 3, 8, 8)
    assert torch.equal(smooth_gradient(gradient, gaussian_kernel1d(1)), gradient)


def test_band_matrix_correlates_rows_with_zero_padding():
    kernel = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(band_matrix(4, kernel), torch.tensor(
        [[2.0, 1.0, 0.0, 0.0], [3.0, 2.0, 1.0, 0.0], [0.0, 3.0, 2.0, 1.0], [0.0, 0.0, 3.0, 2.0]]
    ))


def test_diversity_bounds_shrink_or_enlarge():
    assert diversity_bounds(224, 0.9) == (201, 224)
    assert diversity_bounds(299, 330 / 299) == (299, 330)
    with pytest.raises(InputError, match="leaves no room to resize a side of 8 px"):
        diversity_bounds(8, 1.1)


def test_input_diversity_resizes_into_its_range_and_pads_with_zeros():
    x = 0.5 + 0.5 * torch.rand(1, 3, 20, 20)  # strictly positive, so zeros are padding
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        out = input_diversity(x, prob=1.0, scale=0.8, generator=generator)
        assert out.shape == (1, 3, 20, 20)
        content = (out != 0).all(dim=1)[0]
        rows, cols = content.any(1).sum().item(), content.any(0).sum().item()
        assert 16 <= rows == cols < 20  # resized side in [int(20 * 0.8), 20)
        assert out.min() >= 0 and out.max() <= 1


def test_input_diversity_keeps_the_aspect_of_non_square_images():
    x = torch.rand(2, 3, 20, 40)
    out = input_diversity(x, prob=1.0, scale=1.5, generator=torch.Generator().manual_seed(1))
    assert out.shape == (2, 3, 30, 60)


def test_input_diversity_with_probability_zero_returns_the_input_itself():
    x = torch.rand(1, 3, 20, 20)
    assert input_diversity(x, prob=0.0, scale=0.9) is x
