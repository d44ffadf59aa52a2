"""Image input and output: finding files, decoding them to [0, 1] tensors, and writing results safely."""

from nrp.io.discover import IMAGE_SUFFIXES, ImageSource, find_images, plan_outputs
from nrp.io.read import iter_batches, read_image
from nrp.io.write import WRITE_SUFFIXES, to_uint8, write_image

__all__ = [
    "IMAGE_SUFFIXES",
    "WRITE_SUFFIXES",
    "ImageSource",
    "find_images",
    "iter_batches",
    "plan_outputs",
    "read_image",
    "to_uint8",
    "write_image",
]
