"""The one sign-gradient loop behind every classifier attack: FGSM, R-FGSM, I-FGSM, PGD, MI-FGSM, DIM, TI and mixes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nrp.attacks import defaults
from nrp.attacks.checks import (
    check_eps,
    check_images,
    check_diversity_scale,
    check_kernel_size,
    check_labels,
    check_probability,
    check_step_size,
    check_steps,
)
from nrp.attacks.ensemble import Model, as_model
from nrp.attacks.targets import random_targets
from nrp.attacks.transforms import diversity_bounds, gaussian_kernel1d, input_diversity, smooth_gradient
from nrp.errors import InputError

RANDOM_STARTS = ("uniform", "sign")
RANDOM_TARGET = "random"
# A many-copy input transformation (BSR, Admix): (x_t, generator) -> (k * B, C, H', W') copies, image b at k * B + b.
InputTransform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]
# An objective replacing the cross-entropy: (model outputs, labels) -> scalar to ascend, summed over images.
Objective = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def iterative_attack(
    model: Model | Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    eps: float,
    step_size: float,
    steps: int,
    random_start: str | None = None,
    start_size: float | None = None,
    momentum: float = 0.0,
    diversity_prob: float = 0.0,
    diversity_scale: float = defaults.DIVERSITY_SCALE,
    ti_kernel: int | None = None,
    target: torch.Tensor | str | None = None,
    generator: torch.Generator | None = None,
    input_transform: InputTransform | None = None,
    pass_size: int | None = None,
    loss: Objective | None = None,
) -> torch.Tensor:
    """L-inf sign-gradient attack on the cross-entropy of ``model``; each option adds one published idea.

    With ``J`` the cross-entropy (summed over the batch, so every image is attacked independently), each of
    the ``steps`` iterations computes

    * ``grad = d J(model(T(x_t)), y) / d x_t`` with ``T`` the DIM transformation (Xie et al., CVPR 2019, Eq. 1),
      applied with probability ``diversity_prob``, identity otherwise; or ``T = input_transform``, which
      returns ``k`` transformed copies of the batch (BSR, Admix), ``J`` then summing over all ``k * B`` copies
      with the labels repeated, i.e. the gradient summed over the copies; ``J = loss`` replaces the
      cross-entropy (the feature-level objectives of FIA and NAA);
    * ``grad <- W * grad`` with ``W`` TI's Gaussian kernel of side ``ti_kernel`` (Dong et al., CVPR 2019, Eq. 8);
    * ``g_{t+1} = momentum * g_t + grad / mean|grad|`` per image (MI-FGSM, Dong et al., CVPR 2018, Eq. 6; the
      mean instead of the L1 norm changes no sign), only when ``momentum > 0``; else ``g_{t+1} = grad``;
    * ``x_{t+1} = clip_{x, eps}(x_t + step_size * sign(g_{t+1}))``, clipped to [0, 1] too (minus the step
      for targeted attacks, which descend the cross-entropy of the target class).

    So ``steps=1, step_size=eps`` is FGSM; more steps is I-FGSM (BIM); ``random_start="uniform"`` is PGD;
    ``random_start="sign"`` with ``steps=1`` is R-FGSM.

    Args:
        model: maps [0, 1] images ``(B, C, H, W)`` to logits ``(B, K)``, normalisation inside; or a list of
            such ``nn.Module``s, attacked through their mean logits (:class:`~nrp.attacks.Ensemble`). Its
            train/eval mode is left as it is and its parameters get no ``.grad``.
        x: clean images ``(B, C, H, W)`` in [0, 1].
        y: true labels ``(B,)``; ``None`` uses the model's own predictions on ``x`` (from the first step's
            forward pass when that pass sees ``x`` itself, else from one extra no-grad pass).
        eps: L-inf budget, [0, 1] units.
        step_size: size of each signed step, [0, 1] units.
        steps: iterations, >= 1.
        random_start: ``None`` starts at ``x``; ``"uniform"`` at ``x + U(-start_size, start_size)`` (PGD,
            Madry et al. 2018); ``"sign"`` at ``x + start_size * sign(N(0, I))`` (R-FGSM, Tramer et al. 2018).
            Both are clipped to [0, 1].
        start_size: radius of the random start, [0, eps]; default ``eps``.
        momentum: MI-FGSM's decay factor mu >= 0 (1.0 in the paper); 0 turns momentum off.
        diversity_prob: DIM's probability p of transforming the input at each step (0.7 in the paper); 0: off.
        diversity_scale: DIM's resize range (:func:`~nrp.attacks.transforms.diversity_bounds`); 0.9 shrinks
            to ``[0.9 H, H)`` and pads back to ``H``; ``330 / 299`` enlarges as Xie et al. (the model must
            then accept the larger size).
        ti_kernel: odd side of TI's Gaussian kernel (sigma ``(ti_kernel - 1) / 6`` px); ``None``: no smoothing.
        target: ``None`` for an untargeted attack; ``(B,)`` target labels; or ``"random"`` for targets drawn
            uniformly among the classes other than ``y`` (the paper's Appendix B).
        generator: random generator for the start, DIM's draws and random targets; ``None`` uses torch's
            global generator (drawing in torchattacks' order, so seeded runs can be compared with it).
        input_transform: ``(x_t, generator) -> copies`` of shape ``(k * B, C, H', W')``, copy ``j`` of image
            ``b`` at index ``j * B + b``, differentiable in ``x_t``; exclusive with ``diversity_prob``.
        pass_size: the most of ``input_transform``'s copies sent through ``model`` in one forward and backward
            pass (>= 1); the gradient is summed over the passes, the same sum as one pass (up to float
            rounding) with a bounded memory. ``None``: all copies in one pass.
        loss: ``(model(inputs), labels) -> scalar`` to ascend (targeted attacks cannot take one); ``labels`` are ``y`` as given (repeated per copy), not checked against class counts, as
            ``model`` may return features. ``None``: the cross-entropy summed over the batch.

    Returns:
        adversarial images shaped and typed like ``x``, in [0, 1], ``|x_adv - x| <= eps``, detached.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        >>> x = torch.rand(2, 3, 8, 8)
        >>> x_adv = iterative_attack(model, x, eps=8 / 255, step_size=1 / 255, steps=10, momentum=1.0)
        >>> bool((x_adv - x).abs().max() <= 8 / 255 + 1e-6)
        True
    """
    check_images(x)
    check_eps(eps)
    check_step_size(step_size)
    check_steps(steps)
    if random_start is not None and random_start not in RANDOM_STARTS:
        raise InputError(f"unknown random_start '{random_start}'; known: None, {', '.join(RANDOM_STARTS)}")
    start_size = eps if start_size is None else start_size
    if not 0.0 <= start_size <= eps:
        raise InputError(f"start_size must be in [0, eps] = [0, {eps}], got {start_size}")
    if not momentum >= 0.0:
        raise InputError(f"momentum must be >= 0, got {momentum}")
    check_probability(diversity_prob, "diversity_prob")
    check_diversity_scale(diversity_scale)
    if diversity_prob > 0.0:
        diversity_bounds(x.shape[-1], diversity_scale)
        diversity_bounds(x.shape[-2], diversity_scale)
    check_kernel_size(ti_kernel)
    if isinstance(target, str) and target != RANDOM_TARGET:
        raise InputError(f"target must be None, a tensor of labels or '{RANDOM_TARGET}', got '{target}'")
    if y is not None:
        check_labels(y, x.shape[0], "y")
    if isinstance(target, torch.Tensor):
        check_labels(target, x.shape[0], "target")
    if pass_size is not None:
        check_steps(pass_size, "pass_size")
    if input_transform is not None and diversity_prob > 0.0:
        raise InputError("give either input_transform or diversity_prob, not both")
    if loss is not None and target is not None:
        raise InputError("a custom loss is ascended as given: targeted attacks use the cross-entropy")
    model = as_model(model)

    x = x.detach()
    targeted = target is not None
    signed_step = -step_size if targeted else step_size
    # One step of at most eps from x cannot leave the ball (x + eps * s rounds exactly as the bound x + eps does),
    # so FGSM skips the projection and only clips to [0, 1].
    project = not (steps == 1 and random_start is None and step_size <= eps)
    lower, upper = ((x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)) if project else (None, None)
    kernel = None if ti_kernel is None else gaussian_kernel1d(ti_kernel, dtype=x.dtype, device=x.device)
    first_pass_sees_x = random_start is None and diversity_prob == 0.0 and input_transform is None

    labels = target if isinstance(target, torch.Tensor) else y
    if labels is None and loss is None and not first_pass_sees_x:
        with torch.no_grad():
            labels = model(x).argmax(1)
    x_adv = x if random_start is None else _random_start(x, random_start, start_size, generator)
    accumulated = None
    for step in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            if input_transform is not None:
                inputs = input_transform(x_adv, generator)
            else:
                inputs = x_adv if diversity_prob == 0.0 else input_diversity(x_adv, diversity_prob, diversity_scale, generator)
            copies = inputs.shape[0] // x.shape[0]
            one_pass = pass_size is None or input_transform is None or inputs.shape[0] <= pass_size
            passes = [inputs] if one_pass else inputs.detach().split(pass_size)
            slices, start = [], 0
            for part in passes:
                if len(passes) > 1:
                    # Each pass differentiates the model at its own detached slice of the copies; one backward pass
                    # through the (cheap) transformation then carries their gradients to x_t.
                    part.requires_grad_(True)
                outputs = model(part)
                if loss is None and step == 0 and start == 0:
                    labels = _attack_labels(labels, outputs, target, generator)
                repeated = _repeat(labels, copies)
                part_labels = None if repeated is None else repeated[start:start + part.shape[0]]
                if loss is not None:
                    objective = loss(outputs, part_labels)
                else:
                    objective = F.cross_entropy(outputs, part_labels, reduction="sum")
                slices.append(torch.autograd.grad(objective, x_adv if len(passes) == 1 else part)[0])
                start += part.shape[0]
            if len(passes) == 1:
                gradient = slices[0]
            else:
                (gradient,) = torch.autograd.grad(inputs, x_adv, grad_outputs=torch.cat(slices))
        with torch.no_grad():
            if kernel is not None:
                gradient = smooth_gradient(gradient, kernel)
            if momentum > 0.0:
                # An all-zero gradient (saturated softmax) would divide 0 by 0.
                scale = gradient.abs().mean(dim=(1, 2, 3), keepdim=True).clamp(min=torch.finfo(gradient.dtype).tiny)
                gradient = gradient.div_(scale)  # autograd's fresh tensor: safe to reuse
                accumulated = gradient if accumulated is None else gradient.add_(accumulated, alpha=momentum)
                gradient = accumulated
            # Fused forms of x + step * sign(g) and min(max(., lower), upper): fewer passes over the batch.
            x_adv = torch.add(x_adv.detach(), gradient.sign(), alpha=signed_step)
            x_adv = x_adv.clamp_(lower, upper) if project else x_adv.clamp_(0.0, 1.0)
    return x_adv.detach()


def _repeat(labels: torch.Tensor | None, copies: int) -> torch.Tensor | None:
    """The labels of ``copies`` stacked copies of the batch."""
    return labels if labels is None or copies == 1 else labels.repeat(copies)


def _random_start(x: torch.Tensor, kind: str, size: float, generator: torch.Generator | None) -> torch.Tensor:
    # Drawn as torchattacks draws (uniform_ / randn), so seeded global-generator runs match it exactly.
    device = generator.device if generator is not None else x.device
    if kind == "uniform":
        noise = torch.empty(x.shape, dtype=x.dtype, device=device).uniform_(-size, size, generator=generator)
    else:
        noise = size * torch.randn(x.shape, dtype=x.dtype, device=device, generator=generator).sign()
    return (x + noise.to(x.device)).clamp(0.0, 1.0)


def _attack_labels(
    labels: torch.Tensor | None, logits: torch.Tensor, target: torch.Tensor | str | None, generator: torch.Generator | None
) -> torch.Tensor:
    """The labels the loss uses, settled on the first forward pass, where the number of classes is known."""
    num_classes = logits.shape[1]
    if labels is None:  # the first pass saw x itself: its predictions are the clean ones
        labels = logits.detach().argmax(1)
    if target == RANDOM_TARGET:
        return random_targets(labels, num_classes, generator)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        name = "target" if target is not None else "y"
        raise InputError(
            f"{name} must be class indices in [0, {num_classes}) for this model, "
            f"got values in [{labels.min().item()}, {labels.max().item()}]"
        )
    return labels
