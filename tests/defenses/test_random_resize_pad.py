import pytest
import torch

from nrp.defenses import RandomResizePad, random_resize_pad
from nrp.defenses.random_resize_pad import output_size_for
from nrp.errors import InputError


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def placement(image: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the non-zero block of a (C, H, W) image whose content is > 0."""
    rows = image.sum(dim=(0, 2)).nonzero().flatten()
    cols = image.sum(dim=(0, 1)).nonzero().flatten()
    return rows[0].item(), cols[0].item(), len(rows), len(cols)


def nearest_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Independent nearest-neighbour resize: output pixel i reads input pixel floor(i * H / height)."""
    rows = torch.tensor([i * image.shape[-2] // height for i in range(height)])
    cols = torch.tensor([j * image.shape[-1] // width for j in range(width)])
    return image[:, rows][:, :, cols]


def test_default_size_follows_xie_et_al():
    assert output_size_for(299, 299) == (331, 331)
    assert output_size_for(224, 224) == (248, 248)
    assert random_resize_pad(torch.rand(1, 3, 32, 16)).shape == (1, 3, 35, 18)


def test_content_is_a_resized_copy_padded_with_zeros(images):
    x = images(4, 16, 16) * 0.9 + 0.1  # strictly positive, so the padding is where the zeros are
    y = random_resize_pad(x, 24, seeded(0))
    assert y.shape == (4, 3, 24, 24)
    for image, out in zip(x, y):
        top, left, height, width = placement(out)
        assert height == width and 16 <= height < 24
        assert torch.equal(out[:, top : top + height, left : left + width], nearest_resize(image, height, width))
        block = torch.zeros_like(out, dtype=torch.bool)
        block[:, top : top + height, left : left + width] = True
        assert (out[~block] == 0).all()


def test_constant_image_known_answer():
    y = random_resize_pad(torch.full((1, 3, 10, 10), 0.5), (14, 12), seeded(1))
    top, left, height, width = placement(y[0])
    assert (y[0, :, top : top + height, left : left + width] == 0.5).all()
    assert y.sum().item() == pytest.approx(0.5 * 3 * height * width)
    assert height - 10 == (width - 10) * 2 or height - 10 == (width - 10) * 2 + 1  # one scale for both sides


def test_sizes_and_offsets_cover_their_ranges():
    x = torch.ones(400, 1, 16, 16)
    y = random_resize_pad(x, 24, seeded(2))
    placements = [placement(image) for image in y]
    assert {p[2] for p in placements} == set(range(16, 24))
    assert {p[0] for p in placements} == set(range(0, 9))
    assert all(p[0] + p[2] <= 24 and p[1] + p[3] <= 24 for p in placements)


def test_reproducible_with_a_seed_and_different_across_seeds(images):
    x = images(2, 16, 16)
    assert torch.equal(RandomResizePad(24, seeded(3))(x), RandomResizePad(24, seeded(3))(x))
    outputs = [random_resize_pad(x, 24, seeded(seed)) for seed in range(4)]
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("output_size", [16, (20, 15), 0, (20,), 20.0])
def test_bad_output_size(images, output_size):
    with pytest.raises(InputError, match="output_size|output size"):
        random_resize_pad(images(1, 16, 16), output_size)
