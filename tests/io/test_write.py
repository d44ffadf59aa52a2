from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nrp.io.write as write_module
from nrp.errors import InputError
from nrp.io import read_image, to_uint8, write_image


def test_to_uint8_rounds_and_clamps() -> None:
    image = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 2.0]).reshape(1, 1, 7).expand(3, 1, 7)
    pixels = to_uint8(image)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (1, 7, 3)
    # round half to even: 0.5 -> 0, 1.5 -> 2, 127.5 -> 128
    assert pixels[0, :, 0].tolist() == [0, 0, 0, 2, 128, 255, 255]


def test_to_uint8_rejects_bad_shape_and_nan() -> None:
    with pytest.raises(InputError, match=r"\(3, H, W\)"):
        to_uint8(torch.zeros(1, 3, 4, 4))
    with pytest.raises(InputError, match="NaN"):
        to_uint8(torch.full((3, 2, 2), float("nan")))


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif", ".tiff", ".bmp", ".PNG"])
def test_lossless_round_trip_is_exact(tmp_path: Path, open_image, suffix: str) -> None:
    image = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    path = tmp_path / f"x{suffix}"
    write_image(image, path)
    assert np.array_equal(np.asarray(open_image(path)), to_uint8(image))
    assert torch.equal(read_image(path), torch.from_numpy(to_uint8(image)).permute(2, 0, 1).float() / 255)


def test_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.png"
    write_image(torch.zeros(3, 4, 4), path)
    assert path.is_file()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_file_has_umask_permissions(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    write_image(torch.zeros(3, 4, 4), path)
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.fixture
def failing_save(monkeypatch):
    """Make Image.save write some bytes then fail, as a full disk would."""

    def save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", save)


def test_failed_write_leaves_no_target_and_no_temp(tmp_path: Path, failing_save) -> None:
    with pytest.raises(OSError, match="No space"):
        write_image(torch.zeros(3, 4, 4), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_existing_target(tmp_path: Path, failing_save) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old content")
    with pytest.raises(OSError):
        write_image(torch.zeros(3, 4, 4), target)
    assert target.read_bytes() == b"old content"
    assert list(tmp_path.iterdir()) == [target]


def test_successful_write_replaces_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old content")
    write_image(torch.ones(3, 4, 4), target)
    assert torch.equal(read_image(target), torch.ones(3, 4, 4))
    assert list(tmp_path.iterdir()) == [target]


def test_unknown_suffix_raises_listing_accepted(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.gif.*\.png.*\.webp"):
        write_image(torch.zeros(3, 4, 4), tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def smooth_image(size: int = 32) -> torch.Tensor:
    """Colour ramps plus mild noise: JPEG keeps it close, and its quality changes the file size."""
    ramp = torch.linspace(0, 1, size)
    horizontal, vertical = ramp[None, :].expand(size, size), ramp[:, None].expand(size, size)
    noise = 0.05 * torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    return (torch.stack([horizontal, vertical, 1 - horizontal]) + noise).clamp(0, 1)


def test_jpeg_quality_is_honoured_and_warned_once(tmp_path: Path, open_image, monkeypatch, caplog) -> None:
    monkeypatch.setattr(write_module, "_jpeg_warned", False)
    image = smooth_image()
    with caplog.at_level(logging.WARNING, logger="nrp.io.write"):
        write_image(image, tmp_path / "low.jpg", quality=10)
        write_image(image, tmp_path / "high.jpeg", quality=95)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpeg").stat().st_size
    assert open_image(tmp_path / "high.jpeg").format == "JPEG"
    assert sum("JPEG" in record.getMessage() for record in caplog.records) == 1
    low_error = (read_image(tmp_path / "low.jpg") - image).abs().mean()
    high_error = (read_image(tmp_path / "high.jpeg") - image).abs().mean()
    assert high_error < 0.02 < low_error
