from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.errors import ImageDecodeError, InputError
from nrp.io import read_image
from nrp.training.data import (
    CropSpec,
    StreamSampler,
    TrainingImages,
    decode_resized,
    load_validation_images,
    resize_short_side,
    sample_plan,
    training_loader,
)


@pytest.fixture
def save_rgb() -> Callable[[Path, np.ndarray], Path]:
    """Save (H, W, 3) uint8 pixels as a PNG (creating the folder) and return the path."""

    def save(path: Path, pixels: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        return path

    return save


@pytest.fixture
def noise_folder(tmp_path: Path, save_rgb) -> Path:
    """Six textured images of various sizes (some smaller than the resize) under nested folders."""
    rng = np.random.default_rng(0)
    sizes = [(40, 50), (64, 48), (30, 90), (70, 70), (25, 33), (90, 45)]
    for i, (height, width) in enumerate(sizes):
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        save_rgb(tmp_path / "photos" / f"sub{i % 2}" / f"img{i}.png", pixels)
    return tmp_path / "photos"


def write_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not an image")
    return path


def step_image(height: int, width: int) -> np.ndarray:
    """Left half black, right half white."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, width // 2 :] = 255
    return pixels


# --- CropSpec and TrainingImages -----------------------------------------------------------------


def test_samples_have_crop_shape_dtype_and_range(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=48, crop=32))
    assert len(images) == 6
    for index in range(len(images)):
        x = images[(index, 1000 + index)]
        assert x.shape == (3, 32, 32)
        assert x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1
        assert x.std() > 0.05  # a real textured crop, not a constant fill


@pytest.mark.parametrize(
    ("resize", "crop", "message"),
    [(64, 128, "crop 128 is larger than the resize 64"), (0, 0, "resize"), (64, 0, "crop"), (48.0, 32, "resize")],
)
def test_bad_crop_spec_is_refused(resize, crop, message: str) -> None:
    with pytest.raises(InputError, match=message):
        CropSpec(resize=resize, crop=crop)


def test_no_images_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        TrainingImages([tmp_path / "empty"])


def test_small_image_is_upscaled_then_cropped(tmp_path: Path, save_rgb) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    save_rgb(tmp_path / "small.png", pixels)
    images = TrainingImages([tmp_path], CropSpec(resize=64, crop=48))
    for seed in range(20):
        x = images[(0, seed)]
        assert x.shape == (3, 48, 48)
        assert x.min() >= 0 and x.max() <= 1


def test_resize_short_side_keeps_aspect() -> None:
    assert resize_short_side(torch.rand(3, 100, 200), 50).shape == (3, 50, 100)
    assert resize_short_side(torch.rand(3, 90, 30), 60).shape == (3, 180, 60)
    assert resize_short_side(torch.rand(2, 3, 20, 20), 7).shape == (2, 3, 7, 7)


def test_crop_moves_along_the_long_side_only(tmp_path: Path, save_rgb) -> None:
    # A 100x200 step image resized to short side 50 is 50x100: a 50x50 crop can start anywhere in columns
    # 0..50, so the share of black columns ranges from all to none. Squashing it to 50x50 would always give half.
    save_rgb(tmp_path / "wide" / "w.png", step_image(100, 200))
    wide = TrainingImages([tmp_path / "wide"], CropSpec(resize=50, crop=50, flip=False))
    black_columns = [int((wide[(0, seed)].mean(dim=(0, 1)) < 0.5).sum()) for seed in range(100)]
    assert min(black_columns) <= 5 and max(black_columns) >= 45
    # Every crop is a step from black to white (no flip).
    x = wide[(0, 7)]
    assert (x.mean(dim=(0, 1)).diff() >= -1e-6).all()

    # A tall 200x100 step image resized to 100x50: every crop spans the full width, and rows are all equal.
    save_rgb(tmp_path / "tall" / "t.png", step_image(200, 100))
    tall = TrainingImages([tmp_path / "tall"], CropSpec(resize=50, crop=50, flip=False))
    crops = torch.stack([tall[(0, seed)] for seed in range(10)])
    assert torch.equal(crops, crops[:1].expand_as(crops))
    assert torch.equal(crops[0, :, :, :24], torch.zeros(3, 50, 24))
    assert torch.equal(crops[0, :, :, 26:], torch.ones(3, 50, 24))


def test_same_item_gives_same_tensor_and_seeds_move_the_crop(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=64, crop=32))
    assert torch.equal(images[(3, 42)], images[(3, 42)])
    crops = [images[(3, seed)] for seed in range(8)]
    distinct = {tuple(c.flatten()[:64].tolist()) for c in crops}
    assert len(distinct) == 8


def test_flip_happens_for_some_seeds_only(tmp_path: Path, save_rgb) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    save_rgb(tmp_path / "a.png", pixels)
    flipping = TrainingImages([tmp_path], CropSpec(resize=40, crop=32, flip=True))
    plain = TrainingImages([tmp_path], CropSpec(resize=40, crop=32, flip=False))
    flipped = 0
    for seed in range(40):
        x, reference = flipping[(0, seed)], plain[(0, seed)]
        assert not torch.equal(reference, reference.flip(-1))  # the crop is asymmetric
        if torch.equal(x, reference.flip(-1)):
            flipped += 1
        else:
            assert torch.equal(x, reference)
    assert 5 <= flipped <= 35


def test_bad_item_types_and_indices(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=32, crop=16))
    with pytest.raises(TypeError):
        images[0]
    with pytest.raises(IndexError):
        images[(6, 0)]


# --- unreadable files ----------------------------------------------------------------------------


def test_unreadable_file_is_warned_once_and_replaced_by_the_next(
    tmp_path: Path, save_rgb, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(3)
    for name in ("a.png", "c.png"):
        save_rgb(tmp_path / name, rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
    bad = write_garbage(tmp_path / "b.png")
    images = TrainingImages([tmp_path], CropSpec(resize=32, crop=16))
    assert [p.name for p in images.paths] == ["a.png", "b.png", "c.png"]
    with caplog.at_level(logging.WARNING, logger="nrp.training.data"):
        for seed in range(5):
            for index in range(3):
                x = images[(index, seed)]
                assert x.shape == (3, 16, 16)
            # b.png falls back to c.png with the same sample seed.
            assert torch.equal(images[(1, seed)], images[(2, seed)])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(bad) in warnings[0].getMessage()


def test_fallback_wraps_around_to_the_first_image(tmp_path: Path, save_rgb) -> None:
    save_rgb(tmp_path / "a.png", np.random.default_rng(4).integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
    write_garbage(tmp_path / "z.png")
    images = TrainingImages([tmp_path], CropSpec(resize=32, crop=16))
    assert torch.equal(images[(1, 9)], images[(0, 9)])


def test_all_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("a.png", "b.jpg"):
        write_garbage(tmp_path / name)
    images = TrainingImages([tmp_path], CropSpec(resize=32, crop=16))
    with pytest.raises(ImageDecodeError, match="none of the 2 training images"):
        images[(0, 0)]
    with pytest.raises(ImageDecodeError):  # still an error the second time, not a silent loop
        images[(1, 0)]


# --- sample_plan and StreamSampler ---------------------------------------------------------------


def test_every_epoch_is_a_permutation_and_orders_depend_on_seed() -> None:
    n = 10
    epochs = [[sample_plan(n, 5, e * n + i)[0] for i in range(n)] for e in range(4)]
    for order in epochs:
        assert sorted(order) == list(range(n))
    assert len({tuple(order) for order in epochs}) == 4
    other_seed = [sample_plan(n, 6, i)[0] for i in range(n)]
    assert other_seed != epochs[0]
    assert [sample_plan(n, 5, i) for i in range(3 * n)] == [sample_plan(n, 5, i) for i in range(3 * n)]


def test_sample_seeds_are_distinct_63_bit_and_depend_on_seed() -> None:
    seeds = [sample_plan(7, 1, p)[1] for p in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2**63 for s in seeds)
    assert sample_plan(7, 2, 0)[1] != seeds[0]
    assert 0 <= sample_plan(7, -3, 0)[1] < 2**63


def test_sampler_follows_sample_plan() -> None:
    sampler = StreamSampler(num_images=5, seed=11, global_batch=4, iterations=3)
    assert len(sampler) == 12
    assert list(sampler) == [sample_plan(5, 11, p) for p in range(12)]


def test_sampler_resume_matches_uninterrupted_run() -> None:
    whole = list(StreamSampler(7, seed=3, global_batch=4, iterations=5))
    head = list(StreamSampler(7, seed=3, global_batch=4, iterations=2))
    tail = list(StreamSampler(7, seed=3, global_batch=4, start_iteration=2, iterations=3))
    assert whole == head + tail


def test_sampler_skips_far_ahead_directly() -> None:
    start = 10**12
    first = next(iter(StreamSampler(9, seed=0, global_batch=8, start_iteration=start)))
    assert first == sample_plan(9, 0, start * 8)


def test_ranks_split_each_global_batch_in_order() -> None:
    single = list(StreamSampler(5, seed=2, global_batch=8, iterations=3))
    ranks = [list(StreamSampler(5, seed=2, global_batch=8, rank=r, world_size=2, iterations=3)) for r in (0, 1)]
    for k in range(3):
        assert ranks[0][4 * k : 4 * k + 4] + ranks[1][4 * k : 4 * k + 4] == single[8 * k : 8 * k + 8]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"global_batch": 6, "world_size": 4},
        {"global_batch": 8, "world_size": 2, "rank": 2},
        {"global_batch": 0},
        {"global_batch": 4, "start_iteration": -1},
    ],
)
def test_sampler_refuses_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(InputError):
        StreamSampler(5, seed=0, **kwargs)


def test_endless_sampler_has_no_length() -> None:
    with pytest.raises(TypeError):
        len(StreamSampler(5, seed=0, global_batch=4))


# --- loader --------------------------------------------------------------------------------------


def loader_batches(images: TrainingImages, **kwargs) -> list[torch.Tensor]:
    return list(training_loader(images, global_batch=4, seed=7, pin_memory=False, **kwargs))


def test_loader_batches_do_not_depend_on_workers_and_resume_exactly(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=24, crop=16))
    serial = loader_batches(images, iterations=5, num_workers=0)
    assert len(serial) == 5 and all(b.shape == (4, 3, 16, 16) for b in serial)
    parallel = loader_batches(images, iterations=5, num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))
    resumed = loader_batches(images, start_iteration=2, iterations=3, num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(serial[2:], resumed, strict=True))
    # Batches of one iteration differ from those of another: the stream moves on.
    assert not torch.equal(serial[0], serial[1])


def test_loader_ranks_share_the_global_batch(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=24, crop=16))
    single = loader_batches(images, iterations=2, num_workers=0)
    halves = [loader_batches(images, iterations=2, rank=r, world_size=2, num_workers=0) for r in (0, 1)]
    for k in range(2):
        assert halves[0][k].shape == (2, 3, 16, 16)
        assert torch.equal(torch.cat([halves[0][k], halves[1][k]]), single[k])


def test_loader_refuses_negative_workers(noise_folder: Path) -> None:
    images = TrainingImages([noise_folder], CropSpec(resize=24, crop=16))
    with pytest.raises(InputError, match="num_workers"):
        training_loader(images, global_batch=4, seed=0, num_workers=-1)


# --- validation images ---------------------------------------------------------------------------


def test_validation_images_shape_determinism_and_limit(noise_folder: Path) -> None:
    batch = load_validation_images([noise_folder], size=20)
    assert batch.shape == (6, 3, 20, 20) and batch.dtype == torch.float32
    assert batch.min() >= 0 and batch.max() <= 1
    assert torch.equal(batch, load_validation_images([noise_folder], size=20))
    limited = load_validation_images([noise_folder], size=20, limit=4)
    assert torch.equal(limited, batch[:4])


def test_validation_images_are_centre_crops(tmp_path: Path, save_rgb) -> None:
    # Thirds: red | green | blue. Resized to 30x90 and centre-cropped to 30x30, only green remains.
    pixels = np.zeros((60, 180, 3), dtype=np.uint8)
    pixels[:, :60, 0] = pixels[:, 60:120, 1] = pixels[:, 120:, 2] = 255
    save_rgb(tmp_path / "thirds.png", pixels)
    (image,) = load_validation_images([tmp_path], size=30)
    assert torch.allclose(image[:, :, 2:-2], torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 30, 26))


def test_validation_skips_bad_files(tmp_path: Path, save_rgb, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    for name in ("a.png", "c.png", "d.png"):
        save_rgb(tmp_path / name, rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))
    bad = write_garbage(tmp_path / "b.png")
    with caplog.at_level(logging.WARNING, logger="nrp.training.data"):
        batch = load_validation_images([tmp_path], size=16, limit=2)
    assert batch.shape == (2, 3, 16, 16)
    assert torch.equal(batch[1], load_validation_images([tmp_path / "c.png"], size=16)[0])
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_validation_with_nothing_readable_or_bad_arguments(tmp_path: Path, save_rgb) -> None:
    write_garbage(tmp_path / "bad" / "x.png")
    with pytest.raises(InputError, match="no readable validation images"):
        load_validation_images([tmp_path / "bad"], size=16)
    save_rgb(tmp_path / "good" / "y.png", np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="size"):
        load_validation_images([tmp_path / "good"], size=0)
    with pytest.raises(InputError, match="limit"):
        load_validation_images([tmp_path / "good"], size=8, limit=0)


# --- the 8-bit pipeline ----------------------------------------------------------------------------


def test_crops_are_cut_in_8_bits_and_match_the_float_pipeline(tmp_path: Path, save_rgb) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, size=(60, 90, 3), dtype=np.uint8)
    save_rgb(tmp_path / "a.png", pixels)
    images = TrainingImages([tmp_path], CropSpec(resize=48, crop=32, flip=False))
    reference = resize_short_side(read_image(tmp_path / "a.png"), 48)  # the float pipeline, resized whole
    for seed in range(5):
        crop = images[(0, seed)]
        assert crop.dtype == torch.float32
        assert torch.equal(crop * 255, (crop * 255).round())  # whole grey levels: converted after the 8-bit crop
        height, width = reference.shape[-2:]
        closest = min((crop - reference[:, top : top + 32, left : left + 32]).abs().max().item()
                      for top in range(height - 31) for left in range(width - 31))
        assert closest <= 1.5 / 255  # some window of the float pipeline's image, up to rounding to 8 bits


def test_large_jpegs_are_decoded_at_a_reduced_scale_close_to_the_full_decode(tmp_path: Path) -> None:
    ramp = np.linspace(0, 255, 1600)[None, :, None] * np.ones((1200, 1, 3))
    Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "big.jpg", quality=95)
    fast = decode_resized(tmp_path / "big.jpg", 300)
    assert fast.dtype == torch.uint8 and fast.shape == (3, 300, 400)
    full = resize_short_side(read_image(tmp_path / "big.jpg"), 300)
    assert (fast.float() / 255 - full).abs().mean() < 2 / 255


def test_decode_resized_names_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot decode .*bad.jpg"):
        decode_resized(write_garbage(tmp_path / "bad.jpg"), 32)
