"""BSR (Wang et al., CVPR 2024): the gradient summed over copies whose blocks are shuffled and rotated."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import functional as TF

from nrp.attacks.assembled import assemble
from nrp.attacks.checks import check_steps
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.named import mi_fgsm
from nrp.attacks.registry import register
from nrp.errors import InputError

BSR_COPIES = 20  # N, transformed copies per step
BSR_BLOCKS = 3  # blocks per side (TransferAttack's and torchattack's default)
BSR_MAX_ANGLE = 24.0  # tau, degrees: each strip is rotated by an angle drawn from U(-tau, tau)


def bsr_copies(
    x: torch.Tensor, *, copies: int = BSR_COPIES, blocks: int = BSR_BLOCKS, max_angle: float = BSR_MAX_ANGLE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``copies`` block-shuffled-and-rotated versions of the batch (one draw per copy for the whole batch).

    Per copy: pick which spatial axis comes first; cut the image along it into ``blocks`` strips of random
    lengths (weights ``U(0, 1)`` normalised to the side, as TransferAttack draws them) and shuffle them; rotate
    each strip about its centre by an angle from ``U(-max_angle, max_angle)`` degrees (bilinear, zero fill,
    as torchvision's ``RandomRotation``), cut it along the other axis into ``blocks`` random pieces, shuffle
    those; reassemble. Differentiable in ``x``.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        copies: N, transformed copies per step (20).
        blocks: strips per axis (3).
        max_angle: tau, the largest rotation of a strip, degrees (24).
        generator: all draws; ``None``: torch's global generator.

    Returns:
        ``(copies * B, C, H, W)``; copy ``j`` of image ``b`` at ``j * B + b``.
    """
    check_steps(copies, "copies")
    check_steps(blocks, "blocks")
    if not 0.0 <= max_angle <= 180.0:
        raise InputError(f"max_angle must be in [0, 180] degrees, got {max_angle}")
    return torch.cat([_shuffle_and_rotate(x, blocks, max_angle, generator) for _ in range(copies)])


def _shuffle_and_rotate(x: torch.Tensor, blocks: int, max_angle: float, generator: torch.Generator | None) -> torch.Tensor:
    first, second = (2, 3) if _uniform(generator).item() < 0.5 else (3, 2)
    strips = []
    for strip in _shuffled_strips(x, first, blocks, generator):
        if strip.shape[first] > 0:
            angle = (2 * _uniform(generator).item() - 1) * max_angle
            strip = TF.rotate(strip, angle, interpolation=TF.InterpolationMode.BILINEAR)
            strip = torch.cat(_shuffled_strips(strip, second, blocks, generator), dim=second)
        strips.append(strip)
    return torch.cat(strips, dim=first)


def _shuffled_strips(x: torch.Tensor, dim: int, blocks: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    side = x.shape[dim]
    weights = _uniform(generator, blocks)
    lengths = (weights / weights.sum() * side).round().long()
    lengths[lengths.argmax()] += side - lengths.sum()
    pieces = list(x.split(lengths.tolist(), dim=dim))
    order = torch.randperm(blocks, generator=generator, device=weights.device).tolist()
    return [pieces[i] for i in order]


def _uniform(generator: torch.Generator | None, n: int = 1) -> torch.Tensor:
    device = generator.device if generator is not None else "cpu"
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def _bsr(arguments: dict[str, Any], knobs: dict[str, Any]) -> torch.Tensor:
    return iterative_attack(**arguments, input_transform=lambda x_t, g: bsr_copies(x_t, **knobs, generator=g))


bsr = register("bsr")(assemble("bsr", """BSR-MI-FGSM (Wang et al., CVPR 2024, Eq. 5): MI-FGSM on the gradient summed over :func:`bsr_copies`.

    Defaults: N = 20 copies, 3 blocks per axis, tau = 24 degrees, with MI-FGSM's mu 1.0 and 10 iterations
    of 1.6/255 at eps 16/255. The paper averages the copies' gradients; the sum has the same signs and,
    after MI-FGSM's normalisation, gives the same steps. The parameters are :func:`mi_fgsm`'s and
    :func:`bsr_copies`' (``copies``, ``blocks``, ``max_angle``).

    Args:
        copies: N, transformed copies per step (20).
        blocks: strips per axis (3).
        max_angle: tau, the largest rotation of a strip, degrees (24).
    """, mi_fgsm, bsr_copies, _bsr))
