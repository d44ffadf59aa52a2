"""Evaluation image sets: the NeurIPS-2017 layout, folder per class, labels CSV, and the fixed batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nrp.errors import InputError
from nrp.eval.datasets import batch_ranges, load_eval_images, read_batch, resize_square


def save(path, value=128, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def test_neurips_dev_set_labels_are_made_0_based(tmp_path):
    for name in ("a1", "b2"):
        save(tmp_path / "images" / f"{name}.png")
    (tmp_path / "images.csv").write_text("ImageId,URL,x1,y1,x2,y2,TrueLabel,TargetClass,OriginalLandingURL\n"
                                         "a1,u,0,0,1,1,306,17,l\nb2,u,0,0,1,1,1,1000,l\n")
    images = load_eval_images(tmp_path)
    assert images.labels == [305, 0] and images.targets == [16, 999]
    assert images.stems() == ["a1", "b2"]


def test_folder_per_class_and_unlabelled_folder(tmp_path):
    save(tmp_path / "classes" / "dog" / "x.png")
    save(tmp_path / "classes" / "cat" / "y.png")
    images = load_eval_images(tmp_path / "classes")
    assert [s.relative.as_posix() for s in images.sources] == ["cat/y.png", "dog/x.png"]
    assert images.labels == [0, 1] and images.stems() == ["cat/y", "dog/x"]
    save(tmp_path / "flat" / "z.png")
    assert load_eval_images(tmp_path / "flat").labels is None


def test_labels_csv_and_max_images(tmp_path):
    for name in ("p", "q", "r"):
        save(tmp_path / "imgs" / f"{name}.jpg")
    (tmp_path / "labels.csv").write_text("filename,label\np.jpg,3\nq.jpg,4\nr.jpg,5\n")
    images = load_eval_images(tmp_path / "imgs", tmp_path / "labels.csv", max_images=2)
    assert images.labels == [3, 4] and images.targets is None
    (tmp_path / "short.csv").write_text("filename,label\np.jpg,3\n")
    with pytest.raises(InputError, match="no label for .*q.jpg"):
        load_eval_images(tmp_path / "imgs", tmp_path / "short.csv")


def test_batches_are_dealt_round_robin_and_cover_every_image_once():
    single = [list(r) for _, r in batch_ranges(10, 3)]
    assert single == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    shared = sorted((n, list(r)) for rank in range(2) for n, r in batch_ranges(10, 3, rank, 2))
    assert [r for _, r in shared] == single
    assert [n for n, _ in batch_ranges(10, 3, 1, 2)] == [1, 3]


def test_resize_square_crops_the_centre_and_quantises():
    image = torch.zeros(3, 20, 40)
    image[:, :, 10:30] = 1.0  # the centre 20x20 is white
    out = resize_square(image, 10)
    assert out.shape == (3, 10, 10)
    assert torch.equal(out[:, :, 1:-1], torch.ones(3, 10, 8))  # the border columns see the antialiasing blur
    noisy = resize_square(torch.rand(3, 10, 10), 10)
    assert torch.equal(noisy * 255, (noisy * 255).round())


def test_read_batch_refuses_mixed_sizes_without_a_size(tmp_path):
    save(tmp_path / "a.png", size=(8, 8))
    save(tmp_path / "b.png", size=(8, 10))
    with pytest.raises(InputError, match="differ in size"):
        read_batch([tmp_path / "a.png", tmp_path / "b.png"])
    assert read_batch([tmp_path / "a.png", tmp_path / "b.png"], 6).shape == (2, 3, 6, 6)
