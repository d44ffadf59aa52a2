"""Attacking several source models at once through their averaged logits (Dong et al., CVPR 2018, Sec. 3.2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nrp.errors import InputError

Model = Callable[[torch.Tensor], torch.Tensor]


class Ensemble(nn.Module):
    """Mean of the logits of several classifiers: ``l(x) = (1/n) * sum_k l_k(x)``.

    The logit ensemble of MI-FGSM's paper (Eq. 6 with equal weights), which the NRP paper's "Ensemble" source
    (Inc-v3, Inc-v4, IncRes-v2, Res-152) uses. Each member keeps its own normalisation inside; the wrapper
    never changes their train/eval mode.

    Args:
        models: classifiers mapping the same [0, 1] images ``(B, 3, H, W)`` to logits ``(B, K)`` over the
            same ``K`` classes.

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
        >>> x = torch.rand(2, 3, 4, 4)
        >>> torch.allclose(Ensemble([m, m])(x), m(x))
        True
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(models) == 0:
            raise InputError("an ensemble needs at least one model, got none")
        for index, model in enumerate(models):
            if not isinstance(model, nn.Module):
                raise InputError(f"ensemble members must be torch.nn.Module, member {index} is {type(model).__name__}")
        self.models = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model(x) for model in self.models]).mean(0)


def as_model(model: Model | Sequence[nn.Module]) -> Model:
    """``model`` itself, or an :class:`Ensemble` when given a list or tuple of models."""
    if isinstance(model, (list, tuple)):
        return model[0] if len(model) == 1 else Ensemble(model)
    if not callable(model):
        raise InputError(f"model must be callable (images -> logits) or a list of models, got {type(model).__name__}")
    return model
