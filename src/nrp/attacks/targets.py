"""Random target labels for targeted attacks (the paper's Appendix B, following Xie et al.'s feature denoising)."""

from __future__ import annotations

import torch

from nrp.errors import InputError


def random_targets(labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A class drawn uniformly among the ``num_classes - 1`` classes other than each label.

    Draws an offset in ``[1, num_classes)`` and adds it modulo ``num_classes``, so a target never equals its
    label and every other class is equally likely.

    Args:
        labels: ``(B,)`` class indices in ``[0, num_classes)``.
        num_classes: number of classes ``K >= 2``.
        generator: random generator for reproducible targets (the draw happens on its device).

    Returns:
        ``(B,)`` class indices on ``labels``' device, ``targets != labels`` everywhere.

    Example:
        >>> labels = torch.tensor([0, 1, 2])
        >>> bool((random_targets(labels, 3) != labels).all())
        True
    """
    if num_classes < 2:
        raise InputError(f"random targets need num_classes >= 2, got {num_classes}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must be in [0, {num_classes}), got values in [{labels.min().item()}, {labels.max().item()}]")
    device = generator.device if generator is not None else labels.device
    offsets = torch.randint(1, num_classes, labels.shape, generator=generator, device=device).to(labels.device)
    return (labels + offsets) % num_classes
