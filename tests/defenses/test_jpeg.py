import io

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.defenses import JpegCompression, jpeg_compress
from nrp.errors import InputError


def pillow_roundtrip(x: torch.Tensor, quality: int, subsampling: str) -> torch.Tensor:
    """Independent reference: quantise with NumPy, encode and decode each image with Pillow, divide by 255."""
    out = []
    for image in x.numpy():
        pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
        out.append(np.array(Image.open(io.BytesIO(buffer.getvalue()))).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out).astype(np.float32) / 255)


@pytest.mark.parametrize("quality", [75, 50, 20])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_bit_exact_with_pillow(images, quality, subsampling):
    x = images(2, 24, 40)
    result = jpeg_compress(x, quality, subsampling)
    assert torch.equal(result, pillow_roundtrip(x, quality, subsampling))


def test_values_outside_the_range_are_clipped_first(images):
    x = images(2, 16, 16) * 1.4 - 0.2
    assert torch.equal(jpeg_compress(x, 75), pillow_roundtrip(x, 75, "4:2:0"))


def test_codec_threads_give_the_same_result(images):
    x = images(5, 16, 24)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # the codec then runs on a pool of 3 threads
    try:
        threaded = jpeg_compress(x, 50)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(threaded, pillow_roundtrip(x, 50, "4:2:0"))


def test_nan_is_refused():
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        jpeg_compress(x)


def test_default_subsampling_is_pillows_default():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    pixels = (x[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=75)  # no subsampling given
    expected = torch.from_numpy(np.array(Image.open(buffer)).astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.equal(JpegCompression()(x)[0], expected)


def test_changes_the_image_and_lower_quality_loses_more(smooth_images):
    x = smooth_images(2, 32, 32) + 0.03 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    x = x.clamp(0, 1)
    errors = [(jpeg_compress(x, q) - x).pow(2).mean().item() for q in (75, 50, 20)]
    assert 0 < errors[0] < errors[1] < errors[2]


def test_keeps_dtype_and_is_detached(images):
    x = images(1, 16, 16, dtype=torch.float64).requires_grad_(True)
    y = jpeg_compress(x)
    assert y.dtype == torch.float64 and not y.requires_grad
    assert torch.equal(y, torch.round(y * 255) / 255)  # k / 255 computed in float64


@pytest.mark.parametrize("kwargs", [{"quality": 0}, {"quality": 101}, {"quality": 75.0}, {"subsampling": "4:1:1"}])
def test_bad_parameters(kwargs):
    with pytest.raises(InputError, match="quality|subsampling"):
        JpegCompression(**kwargs)


def test_needs_three_channels():
    with pytest.raises(InputError, match="3 channels"):
        jpeg_compress(torch.rand(1, 1, 8, 8))
