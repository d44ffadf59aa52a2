"""Classification metrics of the paper's tables, from stored top-5 predictions."""

from __future__ import annotations

import torch


def classification_metrics(
    top5: torch.Tensor,
    labels: torch.Tensor | None,
    clean_top1: torch.Tensor | None,
    targets: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """Top-1/top-5 accuracy, attack success rate and fooling rate of one (set, defense, target) triple.

    Args:
        top5: ``(N, 5)`` class indices, most likely first, of the defended target on the set's images.
        labels: ``(N,)`` true classes, or ``None`` (then accuracies and success are ``None``).
        clean_top1: ``(N,)`` the same defended target's top-1 on the clean images; ``None`` for the clean set.
        targets: ``(N,)`` the classes a targeted attack aimed at, or ``None`` for an untargeted attack.

    Returns:
        ``top1``, ``top5``: share of images whose true class is the first / among the first five predictions.
        ``success_rate``: untargeted, the share the defended target gets wrong (``1 - top1``, the paper's
        Table 1 metric, computed over all images, not only those classified right when clean); targeted, the
        share classified as the target class. ``fooling_rate``: share whose top-1 differs from the defended
        target's top-1 on the clean image (needs no labels).

    Example:
        >>> top5 = torch.tensor([[1, 2, 3, 4, 5], [7, 1, 2, 3, 4]])
        >>> classification_metrics(top5, torch.tensor([1, 1]), torch.tensor([1, 1]))
        {'images': 2, 'top1': 0.5, 'top5': 1.0, 'success_rate': 0.5, 'fooling_rate': 0.5}
    """
    first = top5[:, 0]
    result: dict[str, float | None] = {"images": int(top5.shape[0])}
    if labels is not None:
        result["top1"] = _mean(first == labels)
        result["top5"] = _mean((top5 == labels[:, None]).any(1))
        result["success_rate"] = _mean(first == targets) if targets is not None else 1.0 - result["top1"]
    else:
        result.update(top1=None, top5=None, success_rate=_mean(first == targets) if targets is not None else None)
    result["fooling_rate"] = None if clean_top1 is None else _mean(first != clean_top1)
    return result


def _mean(values: torch.Tensor) -> float:
    return float(values.double().mean()) if values.numel() else 0.0
