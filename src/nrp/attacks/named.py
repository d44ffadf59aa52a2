"""The iterative attacks of the paper's Table 1 and Table 5 by name, with Appendix F's defaults.

Each is one call to :func:`~nrp.attacks.iterative.iterative_attack`; only the defaults differ. Every function
takes ``(model, x, y=None, eps=16/255, *, ...)`` and returns detached adversarial images in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nrp.attacks import defaults
from nrp.attacks.ensemble import Model
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.registry import register, variant

Target = torch.Tensor | str | None


@register("i_fgsm")
def i_fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.STEP_SIZE,
    steps: int = defaults.STEPS,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """I-FGSM / BIM (Kurakin et al., 2017, Eq. 2): ``steps`` signed steps of ``step_size``, clipped to the eps ball.

    Appendix F: 10 iterations of 1.6/255 at eps 16/255. ``y=None`` attacks the model's own predictions;
    ``target`` (labels or ``"random"``) makes it targeted; ``generator`` draws random targets.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        >>> x = torch.rand(2, 3, 8, 8)
        >>> bool((i_fgsm(model, x) - x).abs().max() <= 16 / 255 + 1e-6)
        True
    """
    return iterative_attack(model, x, y, eps=eps, step_size=step_size, steps=steps, target=target, generator=generator)


@register("pgd")
def pgd(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.PGD_STEP_SIZE,
    steps: int = defaults.PGD_STEPS,
    random_start: bool = True,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD (Madry et al., ICLR 2018, Eq. 2): I-FGSM from a uniformly random point of the eps ball.

    Defaults: 10 iterations (Appendix B) of 2/255 (the authors' PGD-through-NRP example), eps 16/255. The
    paper's Appendix B attack is targeted with random targets: ``pgd(model, x, y, target="random",
    generator=g)``. ``random_start=False`` starts at ``x`` (then PGD is I-FGSM).
    """
    return iterative_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, random_start="uniform" if random_start else None,
        target=target, generator=generator,
    )


@register("mi_fgsm")
def mi_fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.STEP_SIZE,
    steps: int = defaults.STEPS,
    momentum: float = defaults.MOMENTUM,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MI-FGSM (Dong et al., CVPR 2018, Eq. 6-7): I-FGSM on ``g_{t+1} = mu g_t + grad / ||grad||_1``.

    Appendix F: decay ``momentum`` 1.0, 10 iterations of 1.6/255, eps 16/255. ``momentum=0`` is I-FGSM.
    """
    return iterative_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, momentum=momentum, target=target, generator=generator
    )


@register("dim")
def dim(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.STEP_SIZE,
    steps: int = defaults.STEPS,
    momentum: float = defaults.MOMENTUM,
    diversity_prob: float = defaults.DIVERSITY_PROB,
    diversity_scale: float = defaults.DIVERSITY_SCALE,
    ti_kernel: int | None = None,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DIM (Xie et al., CVPR 2019, M-DI2-FGSM): MI-FGSM on randomly resized and padded inputs.

    DIM as the TI paper (Dong et al., CVPR 2019) and the paper's Table 1 use it carries momentum (1.0);
    ``momentum=0`` gives DI2-FGSM. Appendix F: transformation probability 0.7, 10 iterations of 1.6/255.
    Resize: ``diversity_scale`` (see :func:`~nrp.attacks.transforms.diversity_bounds`; 0.9 by default).
    ``ti_kernel`` adds TI's Gaussian smoothing of the gradient (``None``: none; :func:`dim_ti_fgsm` sets 15).
    ``generator`` draws the transformations (and random targets).
    """
    return iterative_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, momentum=momentum, diversity_prob=diversity_prob,
        diversity_scale=diversity_scale, ti_kernel=ti_kernel, target=target, generator=generator,
    )


@register("ti_fgsm")
def ti_fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    ti_kernel: int = defaults.TI_KERNEL,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TI-FGSM (Dong et al., CVPR 2019, Eq. 8): one FGSM step of ``eps`` along the Gaussian-smoothed gradient.

    The paper's Table 1 "FGSM_TI". ``ti_kernel``: odd kernel side, 15 by default (sigma 7/3 px).
    """
    return iterative_attack(
        model, x, y, eps=eps, step_size=eps, steps=1, ti_kernel=ti_kernel, target=target, generator=generator
    )


@register("mi_ti_fgsm")
def mi_ti_fgsm(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = defaults.EPS,
    *,
    step_size: float = defaults.STEP_SIZE,
    steps: int = defaults.STEPS,
    momentum: float = defaults.MOMENTUM,
    ti_kernel: int = defaults.TI_KERNEL,
    target: Target = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TI-MI-FGSM (Dong et al., CVPR 2019): MI-FGSM with the gradient smoothed before normalisation.

    The paper's Table 1 "MIFGSM_TI": momentum 1.0, 10 iterations of 1.6/255, kernel 15.
    """
    return iterative_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, momentum=momentum, ti_kernel=ti_kernel,
        target=target, generator=generator,
    )


dim_ti_fgsm = register("dim_ti_fgsm")(variant(
    dim, "dim_ti_fgsm",
    "TI-DIM (Dong et al., CVPR 2019): momentum, input diversity and Gaussian smoothing together.\n\n"
    "The paper's Table 1 \"DIM_TI\" and Table 3: momentum 1.0, probability 0.7, kernel 15, 10 iterations of "
    "1.6/255. DIM already carries momentum, so \"MI-DIM-TI\" is this attack: ``mi_dim_ti_fgsm`` is the same "
    "function under that name.",
    ti_kernel=defaults.TI_KERNEL,
))
mi_dim_ti_fgsm = register("mi_dim_ti_fgsm")(dim_ti_fgsm)
