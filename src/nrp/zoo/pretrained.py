"""Finding pretrained backbone weights in the library caches, with a clear error when they are absent."""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from nrp.errors import WeightsUnavailableError
from nrp.zoo.spec import torchvision_weights

HOW_TO_PROVIDE = "pass a weights file (Python: weights=FILE)"
"""How every missing-weights message ends. It names no flag: the command line adds its own (nrp.cli.messages)."""
PROBE_TIMEOUT = 3.0
"""Seconds the reachability probe of the Hugging Face Hub waits before calling the machine offline."""
REASON_LENGTH = 160
"""Most characters of a library's error quoted in a message (cut at a word, never inside one)."""
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
# Constructor arguments torchvision's builders set when they load pretrained weights, which building with
# weights=None would miss: these two take ImageNet-normalised input and re-normalise it themselves.
TORCHVISION_PRETRAINED_ARGUMENTS = {
    "inception_v3": {"transform_input": True, "init_weights": False},
    "googlenet": {"transform_input": True, "init_weights": False},
}


def torchvision_pretrained_state(name: str, download: bool = True, weights: str | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of torchvision model ``name``, weights tag ``weights`` (``None``: ``DEFAULT``):
    from torch hub's cache, else downloaded.

    Raises:
        WeightsUnavailableError: not cached and ``download`` is off or the download failed; the message names
            the file, where it is expected, and how to provide it.
    """
    url = torchvision_weights(name, weights).url
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

    Offline is detected before anything is asked of the Hub: with ``HF_HUB_OFFLINE=1``, or when the Hub's
    host does not answer a TCP connection within :data:`PROBE_TIMEOUT` seconds (skipped behind a proxy), the
    model is loaded in Hugging Face's offline mode, from the cache only, so a missing file fails at once
    instead of after the Hub client's retries.

    Raises:
        WeightsUnavailableError: the weights are neither cached nor downloadable (one line).
    """
    import timm
    from huggingface_hub import constants
    offline = constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT)
    try:
        with hub_offline(offline):
            return timm.create_model(name, pretrained=True)
    except (OSError, RuntimeError, ValueError) as error:
        where = f"the pretrained weights of timm model {name} are not in the Hugging Face cache {constants.HF_HUB_CACHE}"
        if offline:
            raise WeightsUnavailableError(
                f"{where} and the Hub is out of reach (offline); on a machine with network access run "
                f"python -c \"import timm; timm.create_model('{name}', pretrained=True)\" and copy its cache "
                f"folder here (or set HF_HOME to a copy), or {HOW_TO_PROVIDE}"
            ) from None
        raise WeightsUnavailableError(f"{where} and could not be downloaded ({_reason(error)}); {HOW_TO_PROVIDE}") from None


def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``endpoint``'s host accepts a TCP connection within ``timeout`` seconds (True behind a proxy)."""
    if any(os.environ.get(variable) for variable in PROXY_VARIABLES):
        return True  # only the proxy knows; let the Hub client try
    url = urllib.parse.urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Hugging Face's offline mode for the duration of the block when ``offline`` (the cache only, no requests)."""
    from huggingface_hub import constants
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = before or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _reason(error: BaseException) -> str:
    """The first line of ``error``'s message, shortened at a word boundary to :data:`REASON_LENGTH` characters."""
    lines = str(error).strip().splitlines()
    return shorten(lines[0] if lines else type(error).__name__)


def shorten(text: str, length: int = REASON_LENGTH) -> str:
    """``text`` cut to at most ``length`` characters at a space, with "…" when cut (never mid-word).

    Example:
        >>> shorten("please check your connection and try again", 30)
        'please check your connection…'
    """
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return cut + "…"
