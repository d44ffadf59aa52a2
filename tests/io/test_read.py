from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nrp.io.read as read_module
from nrp.errors import ImageDecodeError, InputError
from nrp.io import ImageSource, iter_batches, read_image


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """Independent reference: (H, W, 3) uint8 -> (3, H, W) float32 / 255."""
    return torch.from_numpy(pixels.astype(np.float32) / np.float32(255)).permute(2, 0, 1)


def check_format(x: torch.Tensor, height: int, width: int) -> None:
    assert x.dtype == torch.float32
    assert x.shape == (3, height, width)
    assert x.min() >= 0 and x.max() <= 1


# --- modes -------------------------------------------------------------------------------------


def test_grayscale_gives_three_equal_channels(tmp_path: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, size=(5, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    x = read_image(tmp_path / "g.png")
    check_format(x, 5, 7)
    expected = torch.from_numpy(gray.astype(np.float32) / np.float32(255))
    for channel in range(3):
        assert torch.equal(x[channel], expected)


def test_bilevel_mode_1(tmp_path: Path) -> None:
    bits = np.zeros((5, 7), dtype=bool)
    bits[1:3, 2:5] = True
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    x = read_image(tmp_path / "b.png")
    assert torch.equal(x, torch.from_numpy(bits.astype(np.float32)).expand(3, 5, 7))


@pytest.mark.parametrize("transparent_index", [None, 1])
def test_palette_gives_palette_colours(tmp_path: Path, open_image, transparent_index: int | None) -> None:
    palette = np.array([[255, 0, 0], [0, 200, 10], [7, 8, 9], [250, 251, 252]], dtype=np.uint8)
    index = np.random.default_rng(0).integers(0, 4, size=(5, 7), dtype=np.uint8)
    image = Image.new("P", (7, 5))
    image.putdata(index.flatten().tolist())
    image.putpalette(palette.flatten().tolist())
    options = {} if transparent_index is None else {"transparency": transparent_index}
    image.save(tmp_path / "p.png", **options)
    if transparent_index is not None:
        assert "transparency" in open_image(tmp_path / "p.png").info
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = read_image(tmp_path / "p.png")
    assert torch.equal(x, as_tensor(palette[index]))


def test_rgba_drops_alpha_and_keeps_stored_colours(tmp_path: Path, open_image, random_rgb, save_rgb) -> None:
    rgb = random_rgb()
    alpha = np.zeros((5, 7, 1), dtype=np.uint8)  # fully transparent: colours must still be kept
    alpha[0, 0] = 255
    save_rgb(tmp_path / "a.png", np.concatenate([rgb, alpha], axis=2))
    assert open_image(tmp_path / "a.png").mode == "RGBA"
    assert torch.equal(read_image(tmp_path / "a.png"), as_tensor(rgb))


def test_la_drops_alpha(tmp_path: Path) -> None:
    la = np.random.default_rng(0).integers(0, 256, size=(5, 7, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    x = read_image(tmp_path / "la.png")
    gray = torch.from_numpy(la[..., 0].astype(np.float32) / np.float32(255))
    assert torch.equal(x, gray.expand(3, 5, 7))


def test_sixteen_bit_grayscale_scaled_by_65535(tmp_path: Path, open_image) -> None:
    values = np.array([[65535, 32768, 0], [1, 255, 256]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert open_image(tmp_path / "g16.png").mode in ("I;16", "I")
    x = read_image(tmp_path / "g16.png")
    check_format(x, 2, 3)
    expected = torch.tensor([[1.0, 32768 / 65535, 0.0], [1 / 65535, 255 / 65535, 256 / 65535]])
    for channel in range(3):
        torch.testing.assert_close(x[channel], expected, rtol=0, atol=1e-7)
    # the value 255 must not saturate as it would with convert("RGB")
    assert x[0, 1, 1] < 0.01


def test_float_mode_is_clipped(tmp_path: Path) -> None:
    values = np.array([[-0.5, 0.25, 1.5]], dtype=np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    x = read_image(tmp_path / "f.tif")
    assert torch.equal(x[1], torch.tensor([[0.0, 0.25, 1.0]]))


def test_exif_orientation_is_applied(tmp_path: Path, random_rgb, save_rgb) -> None:
    rgb = random_rgb(5, 7)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    save_rgb(tmp_path / "o.png", rgb, exif=exif)
    x = read_image(tmp_path / "o.png")
    check_format(x, 7, 5)
    assert torch.equal(x, as_tensor(np.rot90(rgb, k=-1)))


def test_cmyk_jpeg_matches_pil_convert(tmp_path: Path, open_image) -> None:
    cmyk = np.random.default_rng(0).integers(0, 256, size=(8, 8, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg", quality=95)
    reference = np.asarray(open_image(tmp_path / "c.jpg").convert("RGB"))
    torch.testing.assert_close(read_image(tmp_path / "c.jpg"), as_tensor(reference), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,options", [
    ("x.png", {}), ("x.bmp", {}), ("x.tif", {}), ("x.tiff", {}), ("x.webp", {"lossless": True}),
])
def test_lossless_round_trip_is_exact(tmp_path: Path, random_rgb, save_rgb, name: str, options: dict) -> None:
    rgb = random_rgb(16, 16)
    save_rgb(tmp_path / name, rgb, **options)
    x = read_image(tmp_path / name)
    check_format(x, 16, 16)
    assert torch.equal(x, as_tensor(rgb))


def test_jpeg_equals_pil_decode(tmp_path: Path, open_image, random_rgb, save_rgb) -> None:
    save_rgb(tmp_path / "x.JPG", random_rgb(16, 16), quality=80)
    reference = np.asarray(open_image(tmp_path / "x.JPG"))
    assert torch.equal(read_image(tmp_path / "x.JPG"), as_tensor(reference))


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,options", [("cut.png", {}), ("cut.jpg", {"quality": 95})])
def test_truncated_file_raises(tmp_path: Path, random_rgb, save_rgb, name: str, options: dict) -> None:
    path = save_rgb(tmp_path / name, random_rgb(64, 64), **options)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=name):
        read_image(path)


def test_text_file_raises(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("not an image at all")
    with pytest.raises(ImageDecodeError, match=r"cannot decode .*x\.png"):
        read_image(tmp_path / "x.png")


def test_empty_file_raises(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty.jpg"):
        read_image(tmp_path / "empty.jpg")


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="ghost.png"):
        read_image(tmp_path / "ghost.png")


# --- batches -----------------------------------------------------------------------------------


@pytest.fixture
def make_sources(tmp_path: Path, random_rgb, save_rgb):
    """Write one PNG per size (None makes a corrupt file) and return their sources."""

    def make(sizes: list[tuple[int, int] | None]) -> list[ImageSource]:
        sources = []
        for i, size in enumerate(sizes):
            path = tmp_path / f"{i:02d}.png"
            if size is None:
                path.write_bytes(b"\x89PNG broken")
            else:
                save_rgb(path, random_rgb(*size))
            sources.append(ImageSource(path=path, relative=Path(path.name)))
        return sources

    return make


def test_batches_group_consecutive_sizes(make_sources) -> None:
    a, b = (5, 7), (6, 4)
    sources = make_sources([a, a, a, b, a, a])
    batches = list(iter_batches(sources, batch_size=2))
    assert [indices for indices, _ in batches] == [[0, 1], [2], [3], [4, 5]]
    assert [tuple(batch.shape) for _, batch in batches] == [(2, 3, 5, 7), (1, 3, 5, 7), (1, 3, 6, 4), (2, 3, 5, 7)]
    for indices, batch in batches:
        for row, i in zip(batch, indices):
            assert torch.equal(row, read_image(sources[i].path))


def test_corrupt_file_is_skipped_through_on_skip(make_sources) -> None:
    sources = make_sources([(5, 7), None, (5, 7), (5, 7)])
    skipped: list[tuple[ImageSource, ImageDecodeError]] = []
    batches = list(iter_batches(sources, batch_size=8, on_skip=lambda s, e: skipped.append((s, e))))
    assert [indices for indices, _ in batches] == [[0, 2, 3]]
    assert len(skipped) == 1
    assert skipped[0][0] is sources[1]
    assert "01.png" in str(skipped[0][1])


def test_default_on_skip_logs_warning(make_sources, caplog) -> None:
    sources = make_sources([None, (5, 7)])
    with caplog.at_level(logging.WARNING, logger="nrp.io.read"):
        batches = list(iter_batches(sources, batch_size=4))
    assert [indices for indices, _ in batches] == [[1]]
    assert any(r.levelno == logging.WARNING and "00.png" in r.getMessage() for r in caplog.records)


def test_batches_are_lazy(make_sources, monkeypatch) -> None:
    sources = make_sources([(5, 7)] * 6)
    calls = []
    real = read_module.read_image
    monkeypatch.setattr(read_module, "read_image", lambda p: calls.append(p) or real(p))
    batches = iter_batches(sources, batch_size=2)
    assert calls == []
    indices, _ = next(batches)
    assert indices == [0, 1]
    assert len(calls) == 2


def test_bad_batch_size(make_sources) -> None:
    with pytest.raises(InputError, match="batch_size"):
        next(iter_batches(make_sources([(5, 7)]), batch_size=0))
