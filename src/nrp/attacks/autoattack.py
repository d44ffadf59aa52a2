"""AutoAttack and APGD (Croce and Hein, ICML 2020) from torchattacks, through an adapter that keeps this package's convention.

The attacks themselves (APGD-CE, APGD-T, FAB-T, Square; APGD-CE and APGD-DLR with EOT in the ``rand``
version) are torchattacks' own; the adapter only maps ``(model, x, y, eps)`` onto them, fills labels from the
model's predictions, passes the seed, and returns a detached batch.
"""

from __future__ import annotations

import torch
from torch import nn

from nrp.attacks import defaults
from nrp.attacks.checks import check_eps, check_images, check_labels, check_steps
from nrp.attacks.registry import register
from nrp.errors import InputError

VERSIONS = ("standard", "rand")
RAND_EOT_DRAWS = 20  # torchattacks' and Croce and Hein's rand version: 20 EOT draws per APGD step
SQUARE_QUERIES = 5000  # the standard version's Square budget (Croce and Hein, torchattacks)
APGD_STEPS = 10  # torchattacks' default (Croce and Hein: 100)
APGD_LOSSES = ("ce", "dlr")


@register("autoattack")
def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    version: str = "standard",
    num_classes: int | None = None,
    steps: int | None = None,
    eot_draws: int = RAND_EOT_DRAWS,
    queries: int = SQUARE_QUERIES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AutoAttack, L-inf, from ``torchattacks.AutoAttack``: the worst case over its attacks, image by image.

    ``version="standard"``: APGD-CE, APGD-T, FAB-T and Square (5000 queries), for deterministic models;
    ``"rand"``: APGD-CE and APGD-DLR with ``eot_draws`` EOT draws per step, for randomised defenses (wrap the
    defense in :class:`~nrp.attacks.DefendedModel` so the gradient goes through it).

    Note torchattacks runs APGD, APGD-T and FAB with 10 iterations by default where Croce and Hein use 100:
    pass ``steps=100`` for their budget. torchattacks switches the model to eval mode for the call (and back).

    Args:
        model: [0, 1] images ``(B, C, H, W)`` -> logits ``(B, num_classes)``.
        x: clean images in [0, 1]. y: labels ``(B,)``; ``None``: the model's predictions.
        eps: L-inf budget, [0, 1] units.
        version: ``"standard"`` or ``"rand"``.
        num_classes: classes of the model; ``None``: read off its logits (APGD-T and FAB-T target the most
            likely other classes, at most 9).
        steps: iterations of APGD, APGD-T and FAB; ``None``: torchattacks' defaults.
        eot_draws: EOT draws of the ``rand`` version (20).
        queries: Square's query budget in the ``standard`` version (5000); each query is one forward pass of
            the images still correctly classified, so through a purifier a smaller budget bounds the time.
        generator: its ``initial_seed()`` seeds torchattacks' attacks (they use the global generator); ``None``: 0.

    Returns:
        detached adversarial images in [0, 1] within ``eps`` of ``x``.
    """
    import torchattacks

    if version not in VERSIONS:
        raise InputError(f"unknown AutoAttack version '{version}'; known: {', '.join(VERSIONS)}")
    check_steps(queries, "queries")
    if steps is not None:
        check_steps(steps)
    y, num_classes, seed = _prepare(model, x, y, eps, eot_draws, num_classes, generator)
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version=version, n_classes=num_classes, seed=seed)
    attack.device = x.device
    for member in attack._autoattack.attacks:
        member.device = x.device
        if steps is not None and hasattr(member, "steps"):
            member.steps = steps
        if version == "rand":
            member.eot_iter = eot_draws
        if hasattr(member, "n_queries"):
            member.n_queries = queries
    return attack(x, y).detach()


@register("apgd")
def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    loss: str = "ce",
    steps: int = APGD_STEPS,
    eot_draws: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """APGD, L-inf (Croce and Hein, ICML 2020, Algorithm 1), from ``torchattacks.APGD``: one restart.

    AutoAttack's first member on its own: step-size-free PGD with momentum, halving its step when progress
    stalls, on the cross-entropy (``loss="ce"``) or the difference-of-logits ratio (``"dlr"``); with
    ``eot_draws > 1`` each step averages that many gradients (EOT, for randomised defenses wrapped in
    :class:`~nrp.attacks.DefendedModel`). Like :func:`autoattack`, the adapter fills labels from the model's
    predictions and seeds the attack from ``generator``; the attack is torchattacks' own.

    Args:
        model: [0, 1] images ``(B, C, H, W)`` -> logits. x: clean images in [0, 1], float32.
        y: labels ``(B,)``; ``None``: the model's predictions.
        eps: L-inf budget, [0, 1] units.
        loss: ``ce`` or ``dlr``.
        steps: iterations (torchattacks' default 10; Croce and Hein use 100).
        eot_draws: gradients averaged per step (1: no EOT).
        generator: its ``initial_seed()`` seeds the random start; ``None``: 0.

    Returns:
        detached adversarial images in [0, 1] within ``eps`` of ``x``.
    """
    import torchattacks

    if loss not in APGD_LOSSES:
        raise InputError(f"unknown APGD loss '{loss}'; known: {', '.join(APGD_LOSSES)}")
    check_steps(steps)
    y, _, seed = _prepare(model, x, y, eps, eot_draws, 1, generator)  # 1: APGD needs no class count
    attack = torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=seed, loss=loss,
                               eot_iter=eot_draws)
    attack.device = x.device
    return attack(x, y).detach()


def _prepare(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, eps: float, eot_draws: int, num_classes: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, int, int]:
    """Checked ``(labels, class count, seed)``: labels and count from the model's logits where not given."""
    check_images(x)
    check_eps(eps)
    if x.dtype != torch.float32:
        raise InputError(f"AutoAttack (torchattacks) computes in float32: give float32 images and model, got {x.dtype}")
    check_steps(eot_draws, "eot_draws")
    if y is None or num_classes is None:
        with torch.no_grad():
            logits = model(x)
        y = logits.argmax(1) if y is None else y
        num_classes = logits.shape[1] if num_classes is None else num_classes
    check_steps(num_classes, "num_classes")
    check_labels(y, x.shape[0], "y")
    return y, num_classes, 0 if generator is None else generator.initial_seed()
