"""Purifying images larger than memory allows, tile by tile, without visible seams.

Each tile is run with ``overlap`` pixels of real context on every inner side. Neighbouring windows are
cross-faded over the ``overlap`` pixels centred on their shared core boundary, so a window's prediction is
used only where it has at least ``overlap / 2`` pixels of context: whenever that covers the network's
receptive field the result equals the untiled output exactly, and beyond it the fade hides the seam.
Peak memory is that of one ``(tile_size + 2 * overlap)``-sized window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_TILE_OVERLAP = 64


def purify_tiled(
    network: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile_size: int,
    overlap: int = DEFAULT_TILE_OVERLAP,
) -> torch.Tensor:
    """Apply an image-to-image ``network`` to ``x`` window by window and blend the windows.

    Args:
        network: maps ``(B, 3, h, w)`` to ``(B, 3, h, w)``; must work on any window size.
        x: images ``(B, 3, H, W)``.
        tile_size: side of the core region each window is responsible for, pixels (>= 1).
        overlap: context pixels added around each core on inner sides, and the width of the blend.

    Returns:
        ``(B, 3, H, W)``, the network's output; equal to ``network(x)`` wherever a window's context covers
        the network's receptive field (``overlap / 2`` pixels).
    """
    if tile_size < 1 or overlap < 0:
        raise ValueError(f"tile_size must be >= 1 and overlap >= 0, got {tile_size} and {overlap}")
    height, width = x.shape[-2:]
    output = x.new_zeros(x.shape[:-3] + (3, height, width))
    total_weight = x.new_zeros(height, width)
    for top, bottom, row_weight in _windows(height, tile_size, overlap, x):
        for left, right, col_weight in _windows(width, tile_size, overlap, x):
            weight = row_weight[:, None] * col_weight[None, :]
            output[..., top:bottom, left:right] += network(x[..., top:bottom, left:right]) * weight
            total_weight[top:bottom, left:right] += weight
    return output / total_weight


def _windows(length: int, tile_size: int, overlap: int, like: torch.Tensor):
    """Yield ``(start, stop, weight)`` of each window along one axis; ``weight`` has ``stop - start`` entries."""
    for core_start in range(0, length, tile_size):
        core_stop = min(core_start + tile_size, length)
        start, stop = max(core_start - overlap, 0), min(core_stop + overlap, length)
        centre = torch.arange(start, stop, device=like.device, dtype=like.dtype) + 0.5
        # Context on each inner side of every pixel; the image border is not an inner edge.
        context_before = centre - start if start > 0 else torch.full_like(centre, float("inf"))
        context_after = stop - centre if stop < length else torch.full_like(centre, float("inf"))
        context = torch.minimum(context_before, context_after)
        weight = ((context - overlap / 2) / max(overlap, 1)).clamp(0.0, 1.0)
        yield start, stop, weight
