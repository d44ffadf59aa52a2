"""Finding pretrained backbone weights in the library caches, with a clear error when they are absent."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
import torchvision
from torch import nn

from nrp.errors import WeightsUnavailableError

HOW_TO_PROVIDE = "pass the file with --backbone-weights FILE (Python: weights=FILE)"
# Constructor arguments torchvision's builders set when they load pretrained weights, which building with
# weights=None would miss: these two take ImageNet-normalised input and re-normalise it themselves.
TORCHVISION_PRETRAINED_ARGUMENTS = {
    "inception_v3": {"transform_input": True, "init_weights": False},
    "googlenet": {"transform_input": True, "init_weights": False},
}


def torchvision_pretrained_state(name: str, download: bool = True) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of torchvision model ``name``: from torch hub's cache, else downloaded.

    Raises:
        WeightsUnavailableError: not cached and ``download`` is off or the download failed; the message names
            the file, where it is expected, and how to provide it.
    """
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    missing = (
        f"the ImageNet weights of {name} ({cached.name}) are not in the torch hub cache {cached.parent}"
    )
    if not download:
        raise WeightsUnavailableError(f"{missing}; download {url} there (or set TORCH_HOME), or {HOW_TO_PROVIDE}")
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise WeightsUnavailableError(
            f"{missing} and could not be downloaded ({_reason(error)}); "
            f"download {url} into {cached.parent} on a machine with network access, or {HOW_TO_PROVIDE}"
        ) from None


def timm_pretrained_model(name: str) -> nn.Module:
    """timm model ``name`` with its pretrained weights, from the Hugging Face cache or downloaded.

    Whether timm may download follows Hugging Face's own switch: set ``HF_HUB_OFFLINE=1`` to fail at once.

    Raises:
        WeightsUnavailableError: the weights are neither cached nor downloadable.
    """
    import timm
    from huggingface_hub import constants
    try:
        return timm.create_model(name, pretrained=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise WeightsUnavailableError(
            f"the pretrained weights of timm model {name} are not in the Hugging Face cache "
            f"{constants.HF_HUB_CACHE} and could not be downloaded ({_reason(error)}); {HOW_TO_PROVIDE}"
        ) from None


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:160]
