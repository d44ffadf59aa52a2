from pathlib import Path

import pytest

from nrp.errors import InputError
from nrp.io import ImageSource
from nrp.io.labels import folder_labels, labels_for, read_labels_csv


def test_a_plain_csv_is_keyed_by_relative_path_without_image_suffix(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("image,label\ncat.png,281\nsub/dog.jpg,207\n./v1.2,5\n")
    labels, targets = read_labels_csv(path)
    assert labels == {"cat": 281, "sub/dog": 207, "v1.2": 5} and targets == {}


def test_the_neurips_dev_set_layout_with_one_based_labels(tmp_path: Path):
    path = tmp_path / "images.csv"
    path.write_text("ImageId,URL,x1,y1,x2,y2,TrueLabel,TargetClass,OriginalLandingURL\n"
                    "0c7ac4a8c9dfa802,u,0,0,1,1,306,599,o\n")
    labels, targets = read_labels_csv(path, offset=1)
    assert labels == {"0c7ac4a8c9dfa802": 305} and targets == {"0c7ac4a8c9dfa802": 598}


@pytest.mark.parametrize(
    "text, message",
    [("name,label\na,1\n", "has no image column"), ("image,klass\na,1\n", "has no label column"), ("image,label\na,cat\n", "line 2: class 'cat' is not an integer")],
)
def test_bad_csv_files_are_explained(tmp_path: Path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_labels_csv(path)


def test_missing_csv_is_named(tmp_path: Path):
    with pytest.raises(InputError, match="labels file not found"):
        read_labels_csv(tmp_path / "nope.csv")


def source(relative: str) -> ImageSource:
    return ImageSource(path=Path("/data") / relative, relative=Path(relative))


def test_folder_per_class_numbers_classes_in_sorted_order():
    sources = [source("zebra/1.png"), source("ant/2.png"), source("ant/sub/3.png"), source("moth/4.png")]
    assert folder_labels(sources) == [2, 0, 0, 1]


def test_folder_per_class_refuses_loose_images():
    with pytest.raises(InputError, match="is not inside a class folder"):
        folder_labels([source("ant/1.png"), source("2.png")])


def test_lookup_names_the_first_image_without_a_label():
    with pytest.raises(InputError, match=r"no label for /data/b.png in the labels file \(1 image\(s\) missing\)"):
        labels_for([source("a.png"), source("b.png")], {"a": 3})
    assert labels_for([source("x/a.png")], {"a": 3}) == [3]


def test_same_name_in_two_class_folders_gets_each_its_own_label(tmp_path: Path):
    """Issue 17 case 3: keyed by stem, cat/00.png took dog/00.png's label."""
    path = tmp_path / "labels.csv"
    path.write_text("image,label\ncat/00.png,0\ndog/00.png,1\ncat/01.png,0\n")
    labels, _ = read_labels_csv(path)
    assert labels_for([source("cat/00.png"), source("dog/00.png"), source("cat/01.png")], labels) == [0, 1, 0]


def test_two_rows_for_one_image_are_refused_naming_both(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("image,label\ncat/00.png,0\ndog/00.png,1\ncat/00.jpg,2\n")
    with pytest.raises(InputError, match=r"lines 2 \(cat/00.png\) and 4 \(cat/00.jpg\) both label image 'cat/00'"):
        read_labels_csv(path)


def test_a_bare_name_shared_by_two_images_is_refused_not_guessed(tmp_path: Path):
    with pytest.raises(InputError, match="names '00' without a folder, but 2 images have that name"):
        labels_for([source("cat/00.png"), source("dog/00.png")], {"00": 3})


def test_short_rows_name_the_line(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("image,label\na.png,1\nb.png\n")
    with pytest.raises(InputError, match=r"labels.csv, line 3: 1 field\(s\), expected 2 \(image, label\)"):
        read_labels_csv(path)


def test_latin1_file_gets_a_clear_message_and_a_bom_is_accepted(tmp_path: Path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("image,label\ncaf\u00e9.png,1\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte 0xe9 at offset 15\); save it as UTF-8"):
        read_labels_csv(latin)
    bom = tmp_path / "bom.csv"
    bom.write_bytes("image,label\ncaf\u00e9.png,1\n".encode("utf-8-sig"))
    assert read_labels_csv(bom) == ({"caf\u00e9": 1}, {})
