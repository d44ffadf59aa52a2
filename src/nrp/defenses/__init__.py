"""Input-transformation defenses, each an ``nn.Module`` from [0, 1] images to [0, 1] images.

JPEG (real codec, and a differentiable approximation), total variation minimisation, median filtering,
random resizing and padding, bit-depth reduction, Gaussian smoothing, and the NRP purifier (static and
dynamic); ``nn.Sequential(defense, classifier)`` is the defended model. ``create_defense(name, **params)``
builds any of them by name; ``check_defense(name, **params)`` checks the parameters without building anything.
"""

from nrp.defenses.bit_depth import BitDepthReduction, reduce_bit_depth
from nrp.defenses.gaussian import GaussianBlur, gaussian_blur
from nrp.defenses.jpeg import JpegCompression, jpeg_compress
from nrp.defenses.jpeg_differentiable import JpegDifferentiable, jpeg_differentiable, quantization_tables
from nrp.defenses.median import MedianBlur, median_blur
from nrp.defenses.purifier import nrp_defense, nrp_dynamic_defense
from nrp.defenses.random_resize_pad import RandomResizePad, random_resize_pad
from nrp.defenses.registry import DEFENSES, check_defense, create_defense, register_defense
from nrp.defenses.tvm import TVM, lamb_from_weight, total_variation, tv_minimize, tv_objective, tvm

__all__ = [
    "DEFENSES",
    "TVM",
    "BitDepthReduction",
    "GaussianBlur",
    "JpegCompression",
    "JpegDifferentiable",
    "MedianBlur",
    "RandomResizePad",
    "check_defense",
    "create_defense",
    "gaussian_blur",
    "jpeg_compress",
    "jpeg_differentiable",
    "lamb_from_weight",
    "median_blur",
    "nrp_defense",
    "nrp_dynamic_defense",
    "quantization_tables",
    "random_resize_pad",
    "reduce_bit_depth",
    "register_defense",
    "total_variation",
    "tv_minimize",
    "tv_objective",
    "tvm",
]
