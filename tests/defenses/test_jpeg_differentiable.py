import io

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.defenses import JpegDifferentiable, jpeg_compress, jpeg_differentiable, quantization_tables
from nrp.errors import InputError


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.mark.parametrize("quality", [1, 20, 49, 50, 75, 95, 100])
def test_quantization_tables_equal_the_ones_pillow_writes(quality):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "JPEG", quality=quality)
    tables = Image.open(buffer).quantization  # natural order
    luma, chroma = quantization_tables(quality)
    assert luma.flatten().tolist() == list(tables[0])
    assert chroma.flatten().tolist() == list(tables[1])


@pytest.mark.parametrize("quality", [75, 50, 20])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_close_to_the_real_codec(smooth_images, quality, subsampling):
    x = smooth_images(2, 32, 48)
    real = jpeg_compress(x, quality, subsampling)
    approx = jpeg_differentiable(x, quality, subsampling)
    assert psnr(approx, real) > 35  # the codec itself is 29-39 dB away from x here
    assert psnr(approx, real) > psnr(real, x) + 5


def test_close_to_the_real_codec_at_odd_sizes(smooth_images):
    x = smooth_images(1, 37, 21)
    assert psnr(jpeg_differentiable(x, 75), jpeg_compress(x, 75)) > 35


def test_mid_grey_passes_exactly():
    x = torch.full((1, 3, 16, 16), 128 / 255)
    assert torch.equal(jpeg_differentiable(x, 20), x)


@pytest.mark.parametrize("rounding", ["straight_through", "cubic"])
def test_gradient_is_finite_and_nonzero(smooth_images, rounding):
    x = smooth_images(2, 16, 16).double().requires_grad_(True)
    y = JpegDifferentiable(50, rounding=rounding)(x)
    (gradient,) = torch.autograd.grad((y * torch.linspace(0, 1, 16, dtype=torch.float64)).sum(), x)
    assert torch.isfinite(gradient).all()
    assert gradient.abs().sum() > 0
    assert (gradient != 0).float().mean() > 0.5


def test_gradient_predicts_the_codecs_response_to_brightening(smooth_images):
    # brightening every pixel by delta moves the real codec's output by about delta per pixel; the gradient of
    # the output's sum (a directional derivative along all-ones) must predict the same
    x = (0.2 + 0.6 * smooth_images(1, 32, 32)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(jpeg_differentiable(x, 75).sum(), x)
    delta = 8 / 255
    response = (jpeg_compress(x.detach() + delta, 75) - jpeg_compress(x.detach(), 75)).sum() / delta
    assert response.item() == pytest.approx(x.numel(), rel=0.05)
    assert gradient.sum().item() == pytest.approx(response.item(), rel=0.05)


def test_output_in_range_and_shape(images):
    x = images(2, 20, 12)
    y = jpeg_differentiable(x, 20)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_bad_rounding():
    with pytest.raises(InputError, match="rounding"):
        JpegDifferentiable(rounding="floor")



def test_computes_in_float32_under_a_callers_bfloat16_autocast(smooth_images):
    x = smooth_images(2, 32, 48)
    expected = jpeg_differentiable(x, quality=75)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = jpeg_differentiable(x, quality=75)
    assert result.dtype == torch.float32 and torch.equal(result, expected)
