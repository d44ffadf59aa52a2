"""Admix (Wang et al., ICCV 2021): the gradient averaged over scaled copies of the image mixed with others."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nrp.attacks import defaults
from nrp.attacks.checks import check_steps
from nrp.attacks.ensemble import Model
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.registry import register
from nrp.errors import InputError

ADMIX_PORTION = 0.2  # eta, the share of the other image
ADMIX_COPIES = 3  # m2, admixed images per input
ADMIX_SCALES = 5  # m1, the scale copies 1, 1/2, ..., 1/16 of each admixed image (SIM's)


def admix_copies(
    x: torch.Tensor, portion: float = ADMIX_PORTION, copies: int = ADMIX_COPIES, scales: int = ADMIX_SCALES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Admix's inputs (Eq. 7): ``gamma_i * (x + portion * x')`` for ``gamma_i = 1 / 2^i``, ``i < scales``.

    ``x'`` is another image of the batch (a random permutation per copy, drawn with ``randperm`` as
    torchattack draws it; it may be the image itself), held constant: no gradient flows into it, as Eq. 7
    treats it as data. Values are not clipped, as in Admix's and torchattack's code.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        portion: eta (0.2). copies: m2 (3). scales: m1 (5).
        generator: draws the permutations; ``None``: torch's global generator.

    Returns:
        ``(scales * copies * B, C, H, W)``: scale ``i``, copy ``j``, image ``b`` at ``(i * copies + j) * B + b``.
    """
    device = generator.device if generator is not None else x.device
    others = x.detach()
    mixed = torch.cat([
        x + portion * others[torch.randperm(x.shape[0], generator=generator, device=device).to(x.device)]
        for _ in range(copies)
    ])
    return torch.cat([mixed * (1.0 / 2**i) for i in range(scales)])


@register("admix")
def admix(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.STEP_SIZE,
    steps: int = defaults.STEPS,
    momentum: float = defaults.MOMENTUM,
    portion: float = ADMIX_PORTION,
    copies: int = ADMIX_COPIES,
    scales: int = ADMIX_SCALES,
    target: torch.Tensor | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Admix-MI-FGSM (Wang et al., ICCV 2021, Eq. 8): MI-FGSM on the gradient summed over :func:`admix_copies`.

    The paper's defaults: eta 0.2, m1 = 5 scales, m2 = 3 admixed images, with MI-FGSM's mu 1.0 and 10
    iterations of 1.6/255 at eps 16/255. Averaging (the paper) or summing (here) the copies' gradients
    changes no sign and, after MI-FGSM's normalisation, no step.
    """
    check_steps(copies, "copies")
    check_steps(scales, "scales")
    if not portion >= 0.0:
        raise InputError(f"portion must be >= 0, got {portion}")
    return iterative_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, momentum=momentum, target=target, generator=generator,
        input_transform=lambda x_t, g: admix_copies(x_t, portion, copies, scales, g),
    )
