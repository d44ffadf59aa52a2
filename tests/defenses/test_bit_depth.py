import pytest
import torch

from nrp.defenses import BitDepthReduction, reduce_bit_depth
from nrp.errors import InputError


def test_one_bit_is_a_threshold_at_one_half():
    x = torch.tensor([0.0, 0.2, 0.49, 0.51, 0.8, 1.0]).view(1, 1, 1, 6)
    assert reduce_bit_depth(x, 1).flatten().tolist() == [0, 0, 0, 1, 1, 1]


def test_two_bits_known_answer():
    x = torch.tensor([0.1, 0.2, 0.45, 0.6, 0.9]).view(1, 1, 1, 5)
    assert torch.allclose(reduce_bit_depth(x, 2).flatten(), torch.tensor([0, 1, 1, 2, 3]) / 3)


@pytest.mark.parametrize("bits", [1, 3, 5, 8])
def test_levels_and_error(images, bits):
    x = images(2, 16, 16)
    y = BitDepthReduction(bits)(x)
    assert y.unique().numel() <= 2**bits
    assert (y - x).abs().max() <= 0.5 / (2**bits - 1) + 1e-6


def test_eight_bits_keeps_8_bit_images():
    x = torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16) / 255
    assert torch.equal(reduce_bit_depth(x, 8), x)


@pytest.mark.parametrize("bits", [0, 9, 2.0])
def test_bad_bits(bits):
    with pytest.raises(InputError, match="bits must be an integer in 1..8"):
        BitDepthReduction(bits)
