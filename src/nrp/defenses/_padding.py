"""Symmetric padding (SciPy's ``mode="reflect"``: the edge pixel is repeated, ``d c b a | a b c d``)."""

from __future__ import annotations

import torch


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dimensions of ``x`` by ``pad`` pixels on every side, mirroring about the edge.

    Differs from ``F.pad(mode="reflect")`` (SciPy's ``"mirror"``, ``d c b | a b c d``), which skips the
    edge pixel; this one equals SciPy's and ART's default, so filters match them at the border too.
    Needs ``pad <= min(H, W)``.

    Example:
        >>> symmetric_pad(torch.tensor([[[[1.0, 2.0, 3.0]]]]), 1)[0, 0, 0]
        tensor([1., 1., 2., 3., 3.])
    """
    if pad == 0:
        return x
    x = torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)
