"""Random resizing and padding (R&P) of Xie et al., "Mitigating Adversarial Effects Through Randomization",
ICLR 2018 (Table 1 of the NRP paper).

Xie et al. resize a 299x299 image to ``rnd x rnd`` with ``rnd`` uniform in [299, 331) (nearest neighbour),
then pad it with zeros to 331x331 at a uniformly random offset. Here the output size defaults to the same
ratio, ``round(side * 331 / 299)`` (224 -> 248), and one random scale per image sets both sides.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nrp.defenses._checks import check_images
from nrp.errors import InputError, InputTooSmallError, ParameterError

RATIO = 331 / 299


def output_size_for(height: int, width: int) -> tuple[int, int]:
    """The default output size: each side times 331/299, rounded (299 -> 331, 224 -> 248, 16 -> 18).

    Example:
        >>> output_size_for(299, 224)
        (331, 248)
    """
    return round(height * RATIO), round(width * RATIO)


def random_resize_pad(
    x: torch.Tensor,
    output_size: int | tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Resize each image by a random factor (nearest neighbour) and pad it with zeros at a random place.

    For an image of ``H x W`` and an output of ``H_out x W_out``, one uniform draw ``t`` in [0, 1) per image
    gives the new size ``(H + floor(t (H_out - H)), W + floor(t (W_out - W)))``, i.e. a side uniform in
    ``[H, H_out)`` as in Xie et al. (for square images both sides are equal); the resized image is then
    placed at a top-left offset drawn uniformly from every position that fits, and the rest is 0.
    Images of a batch draw independently. Gradients flow through the resize (nearest neighbour).

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        output_size: ``H_out`` (square) or ``(H_out, W_out)``, each strictly larger than the input side;
            ``None`` for :func:`output_size_for` (Xie et al.'s 331/299).
        generator: random generator of sizes and offsets, for reproducible draws (on any device).

    Returns:
        ``(B, C, H_out, W_out)`` in [0, 1]: larger than the input, so the classifier behind it must accept
        that size (those with global pooling do).

    Example:
        >>> random_resize_pad(torch.rand(2, 3, 299, 299)).shape
        torch.Size([2, 3, 331, 331])
    """
    check_images(x)
    height, width = x.shape[-2:]
    out_height, out_width = _output_size(output_size, height, width)
    device = generator.device if generator is not None else x.device
    draws = torch.rand(x.shape[0], 3, generator=generator, device=device, dtype=torch.float64).cpu()
    out = x.new_zeros(x.shape[0], x.shape[1], out_height, out_width)
    for index, (scale, top_draw, left_draw) in enumerate(draws.tolist()):
        new_height = height + int(scale * (out_height - height))
        new_width = width + int(scale * (out_width - width))
        top = int(top_draw * (out_height - new_height + 1))
        left = int(left_draw * (out_width - new_width + 1))
        resized = F.interpolate(x[index : index + 1], size=(new_height, new_width), mode="nearest")
        out[index : index + 1, :, top : top + new_height, left : left + new_width] = resized
    return out


def _output_size(output_size: int | tuple[int, int] | None, height: int, width: int) -> tuple[int, int]:
    """The output size for ``height x width`` images, which must be larger on both sides."""
    checked = _check_output_size(output_size)
    if checked is None:
        size = output_size_for(height, width)
    else:
        size = (checked, checked) if isinstance(checked, int) else checked
    if size[0] <= height or size[1] <= width:
        # The default size is smaller than needed only for images of a few pixels, which are skipped.
        error = InputTooSmallError if checked is None else InputError
        raise error(f"R&P output size {size} must be larger than the input size {(height, width)} on both sides; "
                         "give a larger output_size")
    return size


def _check_output_size(output_size: object) -> int | tuple[int, int] | None:
    """None, an integer >= 2 or a pair of them (the comparison with the input size waits for the input)."""
    if output_size is None:
        return None
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 2 for v in size)):
        raise ParameterError(f"output_size must be an integer >= 2 or a pair of them, got {output_size!r}", "output_size")
    return output_size if isinstance(output_size, int) else (int(size[0]), int(size[1]))


class RandomResizePad(nn.Module):
    """:func:`random_resize_pad` as a module; fresh draws on every call (from ``generator`` when given).

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C, H_out, W_out)`` in [0, 1].
    """

    def __init__(self, output_size: int | tuple[int, int] | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.output_size = _check_output_size(output_size)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return random_resize_pad(x, self.output_size, self.generator)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
