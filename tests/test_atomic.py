"""atomic_path: a target is either its old content or the complete new one, never half of either."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nrp.atomic import atomic_path


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_success_renames_the_temporary_file_onto_the_target(tmp_path):
    target = tmp_path / "model.pth"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent  # same folder, so the rename is atomic
        assert tmp != target
        assert tmp.exists()
        tmp.write_bytes(b"new content")
        assert target.read_bytes() == b"old"  # readers still see the old file while writing
    assert target.read_bytes() == b"new content"
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_temporary_file_is_hidden_and_named_after_the_target(tmp_path):
    with atomic_path(tmp_path / "out.safetensors") as tmp:
        tmp.write_bytes(b"x")
        assert tmp.name.startswith(".out.safetensors.")
        assert tmp.name.endswith(".tmp")


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_exception_leaves_an_existing_target_unchanged(tmp_path, exception):
    target = tmp_path / "model.pth"
    target.write_bytes(b"previous")
    with pytest.raises(exception):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half writ")
            raise exception("disk full")
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_exception_creates_no_target(tmp_path):
    target = tmp_path / "model.pth"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_permissions_are_those_open_would_give(tmp_path):
    target = tmp_path / "image.png"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"png")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()


def test_parent_folders_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "c" / "weights.safetensors"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"w")
    assert target.read_bytes() == b"w"
    assert os.listdir(target.parent) == ["weights.safetensors"]


def test_accepts_a_string_path(tmp_path):
    with atomic_path(str(tmp_path / "s.txt")) as tmp:
        tmp.write_text("ok")
    assert (tmp_path / "s.txt").read_text() == "ok"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_replacing_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.pth"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
