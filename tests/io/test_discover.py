from __future__ import annotations

import os
from pathlib import Path

import pytest

from nrp.errors import InputError
from nrp.io import IMAGE_SUFFIXES, ImageSource, find_images, plan_outputs


@pytest.fixture
def tree(tmp_path: Path, random_rgb, save_rgb) -> Path:
    """in/ with nested images, a hidden file and folder, and a non-image file."""
    root = tmp_path / "in"
    for name in ["b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.tif", ".hidden.png", ".cache/e.png"]:
        save_rgb(root / name, random_rgb())
    (root / "notes.txt").write_text("not an image")
    return root


def relatives(sources: list[ImageSource]) -> list[str]:
    return [source.relative.as_posix() for source in sources]


def test_folder_is_searched_recursively_sorted_hidden_skipped(tree: Path) -> None:
    sources = find_images([tree])
    assert relatives(sources) == ["a.JPG", "b.png", "sub/c.webp", "sub/deeper/d.tif"]
    for source in sources:
        assert source.path == tree / source.relative
        assert source.path.is_file()


def test_suffixes_are_the_documented_ones() -> None:
    assert set(IMAGE_SUFFIXES) == {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def test_explicit_file_kept_whatever_its_suffix(tmp_path: Path, tree: Path) -> None:
    odd = tmp_path / "photo.dat"
    odd.write_bytes(b"decoding decides later")
    sources = find_images([odd, tree / "sub" / "c.webp"])
    assert sources == [
        ImageSource(path=odd, relative=Path("photo.dat")),
        ImageSource(path=tree / "sub" / "c.webp", relative=Path("c.webp")),
    ]


def test_inputs_keep_their_order(tree: Path) -> None:
    sources = find_images([tree / "sub", tree / "b.png"])
    assert relatives(sources) == ["c.webp", "deeper/d.tif", "b.png"]


def test_duplicates_are_listed_once(tree: Path) -> None:
    sources = find_images([tree / "b.png", tree, tree / "sub" / ".." / "b.png", str(tree)])
    assert relatives(sources) == ["b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.tif"]
    assert len({source.path.resolve() for source in sources}) == len(sources)


def test_missing_path_raises_naming_it(tree: Path) -> None:
    with pytest.raises(InputError, match="nowhere.png"):
        find_images([tree, tree / "nowhere.png"])


def test_empty_folder_raises_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    (empty / ".git" / "x.png").write_bytes(b"")
    (empty / "readme.md").write_text("no images here")
    with pytest.raises(InputError, match="empty"):
        find_images([empty])


# --- plan_outputs ------------------------------------------------------------------------------


def test_outputs_mirror_the_input_structure(tmp_path: Path, tree: Path, fingerprint) -> None:
    before = fingerprint(tree)
    sources = find_images([tree])
    outputs = plan_outputs(sources, tmp_path / "out")
    assert outputs == [tmp_path / "out" / p for p in ["a.png", "b.png", "sub/c.png", "sub/deeper/d.png"]]
    assert plan_outputs(sources, tmp_path / "out", suffix=".webp")[2] == tmp_path / "out" / "sub" / "c.webp"
    assert not (tmp_path / "out").exists()
    assert fingerprint(tree) == before


def test_collision_gets_full_name_plus_suffix(tmp_path: Path, random_rgb, save_rgb, fingerprint) -> None:
    root = tmp_path / "in"
    for name in ["a.jpg", "a.png", "b.jpg", "c.tif"]:
        save_rgb(root / name, random_rgb())
    before = fingerprint(root)
    outputs = plan_outputs(find_images([root]), tmp_path / "out")
    assert [p.name for p in outputs] == ["a.jpg.png", "a.png.png", "b.png", "c.png"]
    assert len(set(outputs)) == len(outputs)
    assert fingerprint(root) == before


def test_case_only_collision_is_resolved(tmp_path: Path) -> None:
    sources = [ImageSource(Path("x/A.jpg"), Path("A.jpg")), ImageSource(Path("x/a.png"), Path("a.png"))]
    assert [p.name for p in plan_outputs(sources, tmp_path / "out")] == ["A.jpg.png", "a.png.png"]


def test_unresolvable_clash_raises(tmp_path: Path) -> None:
    # Same name from two folders given as files: both would become out/a.png.png.
    sources = [ImageSource(Path("x/a.png"), Path("a.png")), ImageSource(Path("y/a.png"), Path("a.png"))]
    with pytest.raises(InputError, match=r"x/a\.png and y/a\.png"):
        plan_outputs(sources, tmp_path / "out")


def test_out_dir_equal_to_input_folder_refuses_to_overwrite(tree: Path, fingerprint) -> None:
    before = fingerprint(tree)
    with pytest.raises(InputError, match=r"overwrite input .*b\.png.*--out"):
        plan_outputs(find_images([tree]), tree)
    assert fingerprint(tree) == before


def test_overwrite_through_symlinked_out_dir_is_refused(tmp_path: Path, tree: Path) -> None:
    link = tmp_path / "link"
    try:
        os.symlink(tree, link, target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not available")
    with pytest.raises(InputError, match="overwrite"):
        plan_outputs(find_images([tree / "b.png"]), link)


def test_out_dir_equal_to_input_folder_without_png_inputs_is_allowed(tmp_path: Path, random_rgb, save_rgb) -> None:
    save_rgb(tmp_path / "a.jpg", random_rgb())
    assert plan_outputs(find_images([tmp_path]), tmp_path) == [tmp_path / "a.png"]


def test_unknown_output_suffix_raises(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(InputError, match=r"\.gif.*\.png"):
        plan_outputs(find_images([tree]), tmp_path / "out", suffix=".gif")
