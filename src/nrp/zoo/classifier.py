"""A frozen ImageNet classifier for [0, 1] images of any size: its published resize, centre-crop and normalisation inside."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nrp.errors import InputError

# crop_pct = crop / resize must map back to resize: 200 / (200 / 241) is 240.99999999999997 in floats.
FLOOR_TOLERANCE = 1e-6
INTERPOLATIONS = ("bilinear", "bicubic")


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(H, W)``: an int means a square."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def scale_size(input_size: int | Sequence[int], crop_pct: float | None) -> int | tuple[int, int] | None:
    """The resize before the centre crop, as timm computes it from ``crop_pct``.

    Returns ``None`` (resize straight to ``input_size``, no crop) when ``crop_pct`` is ``None`` or 1; the
    short side ``floor(S / crop_pct)`` for a square ``S x S`` input size; else ``(floor(H / crop_pct),
    floor(W / crop_pct))``.

    Example:
        >>> scale_size(299, 0.875), scale_size(224, 224 / 256), scale_size(224, 1.0)
        (341, 256, None)
    """
    if crop_pct is None or crop_pct == 1:
        return None
    if not 0 < crop_pct < 1:
        raise InputError(f"crop_pct must be in (0, 1] (1 or None: no crop), got {crop_pct!r}")
    height, width = pair(input_size)
    sides = tuple(math.floor(side / crop_pct + FLOOR_TOLERANCE) for side in (height, width))
    return sides[0] if height == width else sides


def resize_crop(
    x: torch.Tensor,
    input_size: int | Sequence[int],
    resize: int | Sequence[int] | None = None,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> torch.Tensor:
    """Bring images to ``input_size``: unchanged when they already have it, else resize and centre-crop.

    An image of exactly ``input_size`` is returned as it is (the same tensor): a resize-and-crop would
    itself be an input transformation, a defense of its own, and would discard the borders. Otherwise the
    geometry is torchvision's ``resize`` then ``center_crop``: an int ``resize`` scales the short side to it
    (the long side to ``int(resize * long / short)``), a pair resizes to exactly that, ``None`` resizes
    straight to ``input_size`` (no crop). The resize is differentiable; bicubic results are clamped to
    [0, 1] as PIL's 8-bit output is.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        input_size: the output size ``S`` or ``(h, w)``.
        resize: see above; it must not be smaller than ``input_size``.
        interpolation: ``"bilinear"`` or ``"bicubic"``, as the model's weights expect.
        antialias: low-pass before downscaling (PIL and torchvision's tensor resize do; ignored when enlarging).

    Returns:
        ``(B, C, h, w)``.

    Example:
        >>> resize_crop(torch.rand(2, 3, 64, 80), 32, resize=36).shape
        torch.Size([2, 3, 32, 32])
        >>> x = torch.rand(1, 3, 32, 32); resize_crop(x, 32, resize=36) is x
        True
    """
    height, width = pair(input_size)
    if tuple(x.shape[-2:]) == (height, width):
        return x
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    if resize is None:
        size = (height, width)
    elif isinstance(resize, int):
        short, long = sorted(x.shape[-2:])
        scaled = (resize, int(resize * long / short))
        size = scaled if x.shape[-2] <= x.shape[-1] else scaled[::-1]
    else:
        size = pair(resize)
    if size[0] < height or size[1] < width:
        raise InputError(f"cannot centre-crop {height}x{width} from images resized to {size[0]}x{size[1]}")
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode=interpolation, align_corners=False, antialias=antialias)
        if interpolation == "bicubic":
            x = x.clamp(0, 1)
    if size == (height, width):
        return x
    top = int(round((size[0] - height) / 2.0))
    left = int(round((size[1] - width) / 2.0))
    return x[..., top:top + height, left:left + width]


class ImageClassifier(nn.Module):
    """An ImageNet classifier for ``[0, 1]`` images of any size, its preprocessing inside.

    ``forward`` passes an image of exactly ``input_size`` to the network unchanged; any other size is
    resized (``interpolation``, ``antialias``: the model's published policy) with its short side to
    ``resize`` and centre-cropped to ``input_size`` (or, when ``crop_pct`` is ``None`` or 1, resized
    straight to ``input_size``); then it normalises
    with the network's mean/std (buffers), runs the network, and drops the first ``label_offset`` logits:
    TF-slim's 1001-class models put "background" at index 0, so outputs are always the 1000 ImageNet
    classes, 0-based. All parameters are frozen and the module starts in eval mode; every step is
    differentiable, so gradients reach the input (attacks need them).

    Args:
        network: maps normalised ``(B, 3, h, w)`` images to ``(B, num_classes + label_offset)`` logits.
        input_size: the network's input ``S`` or ``(h, w)``.
        mean: per-channel mean the network was trained with (RGB, [0, 1] units).
        std: per-channel standard deviation (RGB, [0, 1] units).
        crop_pct: ``input_size`` over the size before cropping, as in timm (0.875: resize 299 / 0.875 =
            341, crop 299); ``None`` or 1: resize straight to ``input_size``.
        label_offset: logits to drop in front (0, or 1 for a background class).
        num_classes: the classes returned, after dropping.
        name: how the model is named in logs and reports (the zoo name).
        interpolation: ``"bilinear"`` or ``"bicubic"``, the resize the weights were evaluated with.
        antialias: low-pass before downscaling (as PIL and torchvision's presets do).

    Shapes:
        ``(B, 3, H, W)`` in [0, 1], any ``H, W`` -> logits ``(B, num_classes)``.

    Example:
        >>> network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1001))
        >>> model = ImageClassifier(network, 8, (0.5,) * 3, (0.5,) * 3, label_offset=1, name="toy")
        >>> model(torch.rand(2, 3, 30, 20)).shape
        torch.Size([2, 1000])
    """

    def __init__(
        self,
        network: nn.Module,
        input_size: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        crop_pct: float | None = None,
        label_offset: int = 0,
        num_classes: int = 1000,
        name: str = "",
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        super().__init__()
        if label_offset not in (0, 1):
            raise InputError(f"label_offset must be 0 or 1 (a background class first), got {label_offset!r}")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        self.network = network
        self.name = name
        self.input_size = pair(input_size)
        self.crop_pct = crop_pct
        self.resize = scale_size(self.input_size, crop_pct)
        self.interpolation = interpolation
        self.antialias = bool(antialias)
        self.identity: dict[str, object] = {}  # what built it (zoo name, weights), set by create_model
        self.label_offset = label_offset
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"{self.name or 'the classifier'} takes RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
        x = resize_crop(x, self.input_size, self.resize, self.interpolation, self.antialias)
        logits = self.network((x - self.mean) / self.std)  # (B, label_offset + num_classes)
        return logits[:, self.label_offset:]

    def preprocessing(self) -> dict[str, object]:
        """The preprocessing policy as plain values (for fingerprints and reports)."""
        return {"input_size": list(self.input_size), "crop_pct": self.crop_pct, "interpolation": self.interpolation,
                "antialias": self.antialias, "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, input_size={self.input_size}, resize={self.resize}, "
                f"interpolation={self.interpolation}, antialias={self.antialias}, "
                f"label_offset={self.label_offset}, num_classes={self.num_classes}")
