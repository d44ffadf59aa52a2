"""Admix (Wang et al., ICCV 2021): the gradient averaged over scaled copies of the image mixed with others."""

from __future__ import annotations

from typing import Any

import torch

from nrp.attacks.assembled import assemble
from nrp.attacks.checks import check_steps
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.named import mi_fgsm
from nrp.attacks.registry import register
from nrp.errors import InputError

ADMIX_PORTION = 0.2  # eta, the share of the other image
ADMIX_COPIES = 3  # m2, admixed images per input
ADMIX_SCALES = 5  # m1, the scale copies 1, 1/2, ..., 1/16 of each admixed image (SIM's)
# Copies per forward pass: bounds the memory to 5 model graphs instead of 15 per image, and keeps each
# activation below glibc's mmap threshold: Admix alone takes 0.888x torchattack's CPU time per step this way,
# 0.979x in one pass (after other attacks in the same process, both tie with it; docs/attacks.md).
ADMIX_PASS_SIZE = 5


def admix_copies(
    x: torch.Tensor, *, portion: float = ADMIX_PORTION, copies: int = ADMIX_COPIES, scales: int = ADMIX_SCALES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Admix's inputs (Eq. 7): ``gamma_i * (x + portion * x')`` for ``gamma_i = 1 / 2^i``, ``i < scales``.

    ``x'`` is another image of the batch (a random permutation per copy, drawn with ``randperm`` as
    torchattack draws it; it may be the image itself), held constant: no gradient flows into it, as Eq. 7
    treats it as data. Values are not clipped, as in Admix's and torchattack's code.

    Args:
        x: ``(B, C, H, W)`` in [0, 1].
        portion: eta, the share of the other image (0.2).
        copies: m2, admixed images per input (3).
        scales: m1, scale copies 1, 1/2, ..., 1/2^(m1-1) of each admixed image (5).
        generator: draws the permutations; ``None``: torch's global generator.

    Returns:
        ``(scales * copies * B, C, H, W)``: scale ``i``, copy ``j``, image ``b`` at ``(i * copies + j) * B + b``.
    """
    check_steps(copies, "copies")
    check_steps(scales, "scales")
    if not portion >= 0.0:
        raise InputError(f"portion must be >= 0, got {portion}")
    device = generator.device if generator is not None else x.device
    # One permutation per copy, drawn in turn (torchattack's order); one gather and one broadcast product build
    # all copies at once, instead of a product and a concatenation per copy and scale.
    orders = torch.stack([torch.randperm(x.shape[0], generator=generator, device=device) for _ in range(copies)])
    mixed = x + portion * x.detach()[orders.to(x.device)]  # (copies, B, C, H, W)
    gammas = torch.tensor([1.0 / 2**i for i in range(scales)], dtype=x.dtype, device=x.device)
    return (gammas.view(-1, 1, 1, 1, 1, 1) * mixed).flatten(0, 2)


def admix_passes(*, pass_size: int | None = ADMIX_PASS_SIZE) -> int | None:
    """Admix's memory knob: ``pass_size`` copies per forward pass (:func:`~nrp.attacks.iterative_attack`)."""
    return pass_size


def _admix(arguments: dict[str, Any], knobs: dict[str, Any]) -> torch.Tensor:
    pass_size = admix_passes(pass_size=knobs.pop("pass_size"))
    return iterative_attack(**arguments, input_transform=lambda x_t, g: admix_copies(x_t, **knobs, generator=g),
                            pass_size=pass_size)


admix = register("admix")(assemble("admix", """Admix-MI-FGSM (Wang et al., ICCV 2021, Eq. 8): MI-FGSM on the gradient summed over :func:`admix_copies`.

    The paper's defaults: eta 0.2, m1 = 5 scales, m2 = 3 admixed images, with MI-FGSM's mu 1.0 and 10
    iterations of 1.6/255 at eps 16/255. Averaging (the paper) or summing (here) the copies' gradients
    changes no sign and, after MI-FGSM's normalisation, no step. The parameters are :func:`mi_fgsm`'s and
    :func:`admix_copies`' (``portion``, ``copies``, ``scales``).

    Args:
        portion: eta, the share of the other image (0.2).
        copies: m2, admixed images per input (3).
        scales: m1, scale copies 1, 1/2, ..., 1/2^(m1-1) of each admixed image (5).
        pass_size: copies per forward and backward pass (5; ``None``: all ``m1 * m2 * B`` in one), the
            gradient summed over the passes: the same attack with a third of the memory per image (a GPU
            may prefer ``None``, one larger pass).
    """, mi_fgsm, (admix_copies, admix_passes), _admix))
