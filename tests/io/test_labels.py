from pathlib import Path

import pytest

from nrp.errors import InputError
from nrp.io import ImageSource
from nrp.io.labels import folder_labels, labels_for, read_labels_csv


def test_a_plain_csv_is_keyed_by_stem(tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text("image,label\ncat.png,281\nsub/dog.jpg,207\n")
    labels, targets = read_labels_csv(path)
    assert labels == {"cat": 281, "dog": 207} and targets == {}


def test_the_neurips_dev_set_layout_with_one_based_labels(tmp_path: Path):
    path = tmp_path / "images.csv"
    path.write_text("ImageId,URL,x1,y1,x2,y2,TrueLabel,TargetClass,OriginalLandingURL\n"
                    "0c7ac4a8c9dfa802,u,0,0,1,1,306,599,o\n")
    labels, targets = read_labels_csv(path, offset=1)
    assert labels == {"0c7ac4a8c9dfa802": 305} and targets == {"0c7ac4a8c9dfa802": 598}


@pytest.mark.parametrize(
    "text, message",
    [("name,label\na,1\n", "has no image column"), ("image,klass\na,1\n", "has no label column"), ("image,label\na,cat\n", "row 2: class 'cat' is not an integer")],
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
