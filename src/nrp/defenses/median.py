"""Median filtering (the paper's "MF", window 3 in Appendix E, Tables 6 and 7)."""

from __future__ import annotations

import torch
from torch import nn

from nrp.defenses._checks import check_images, check_odd, check_padding
from nrp.defenses._padding import symmetric_pad

DEFAULT_WINDOW = 3


def median_blur(x: torch.Tensor, window: int = DEFAULT_WINDOW) -> torch.Tensor:
    """Replace every pixel by the median of its ``window x window`` neighbourhood, per channel.

    Borders are padded symmetrically (SciPy's and ART's ``mode="reflect"``), so the result equals
    ``scipy.ndimage.median_filter(x, size=(1, 1, window, window), mode="reflect")`` everywhere.
    Gradients flow to the median pixel of each window.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        window: odd side of the square window, pixels; 1 is the identity. ``window // 2 <= min(H, W)``.

    Returns:
        ``(B, C, H, W)`` in [0, 1].

    Example:
        >>> x = torch.zeros(1, 3, 5, 5); x[..., 2, 2] = 1.0   # an isolated bright pixel
        >>> median_blur(x, 3).max()
        tensor(0.)
    """
    check_images(x)
    check_odd("window", window)
    check_padding(window, x)
    if window == 1:
        return x
    if window == 3:
        return _median3x3(x)
    batch, channels, height, width = x.shape
    patches = symmetric_pad(x, window // 2).unfold(2, window, 1).unfold(3, window, 1)  # (B, C, H, W, w, w)
    return patches.reshape(batch, channels, height, width, window * window).median(dim=-1).values


def _median3x3(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 median with 19 element-wise min/max (about 10x faster than sorting 9 values per pixel).

    Sort every vertical triple once (each is shared by three windows); the median of the 3x3 window is then
    the median of: the largest of its three column minima, the median of its three column medians, and
    the smallest of its three column maxima (exact, ties included).
    """
    height, width = x.shape[-2:]
    padded = symmetric_pad(x, 1)
    top, centre, bottom = padded[..., :height, :], padded[..., 1 : height + 1, :], padded[..., 2:, :]  # (B, C, H, W + 2)
    low, high = torch.minimum(top, centre), torch.maximum(top, centre)
    column_min, upper = torch.minimum(low, bottom), torch.maximum(low, bottom)
    column_mid, column_max = torch.minimum(high, upper), torch.maximum(high, upper)

    def shifted(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return t[..., :width], t[..., 1 : width + 1], t[..., 2:]

    left, middle, right = shifted(column_min)
    max_of_mins = torch.maximum(torch.maximum(left, middle), right)
    left, middle, right = shifted(column_max)
    min_of_maxes = torch.minimum(torch.minimum(left, middle), right)
    return _median_of_three(max_of_mins, _median_of_three(*shifted(column_mid)), min_of_maxes)


def _median_of_three(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))


class MedianBlur(nn.Module):
    """:func:`median_blur` as a module: ``nn.Sequential(MedianBlur(3), classifier)``.

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C, H, W)`` in [0, 1].
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        super().__init__()
        self.window = check_odd("window", window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return median_blur(x, self.window)

    def extra_repr(self) -> str:
        return f"window={self.window}"
