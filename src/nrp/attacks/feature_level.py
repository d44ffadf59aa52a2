"""Feature-level transfer attacks on one intermediate layer of the source model: FIA, NAA, ILPD and ILA.

Each is a call to :func:`~nrp.attacks.iterative.iterative_attack` (MI-FGSM's momentum, sign step and
projection) on a different objective (ILA: two calls, its baseline attack's and its own); the layer is named as ``model.get_submodule`` names it (see
:mod:`nrp.attacks.layers`). Defaults: eps 16/255, 10 iterations of 1.6/255, momentum 1.0 (the NRP paper's
Appendix F, which is also what the FIA and NAA papers use).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nrp.attacks.assembled import assemble
from nrp.attacks.checks import check_images, check_labels, check_probability, check_steps
from nrp.attacks.iterative import Objective, iterative_attack
from nrp.attacks.layers import LayerOutput, find_layer, logits_and_layer, replaced_output
from nrp.attacks.named import mi_fgsm
from nrp.attacks.registry import register
from nrp.errors import InputError

FIA_ENSEMBLE = 30  # N, the number of random-mask copies (Wang et al., Sec. 4.1)
FIA_DROP_PROB = 0.3  # p_d against normally trained models (0.1 against defended ones, Wang et al., Sec. 4.1)
NAA_STEPS = 30  # N, the integrated-gradient path length (Zhang et al., Sec. 4.1)
NAA_GAMMA = 1.0  # gamma, the weight of negative attributions (Zhang et al., Eq. 11)
ILPD_COEF = 0.1  # gamma, the decay of the perturbation at the layer (Li et al., Eq. 5)
ILPD_SIGMA = 0.05  # sigma, the std of the Gaussian noise added to the clean image, [0, 1] units
ILA_STEPS = 10  # ILA's own iterations after the baseline's 10 (TransferAttack's port runs 10 and 10)


def _fia(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, layer: str, ensemble: int = FIA_ENSEMBLE,
    drop_prob: float = FIA_DROP_PROB, generator: torch.Generator | None = None,
) -> tuple[nn.Module, Objective]:
    check_probability(drop_prob, "drop_prob")
    check_steps(ensemble, "ensemble")
    keep = torch.full_like(x, 1.0 - drop_prob)
    importance = _aggregate_gradient(model, layer, [x * _bernoulli(keep, generator) for _ in range(ensemble)], labels)
    importance = importance / importance.flatten(1).norm(dim=1).clamp(min=torch.finfo(x.dtype).tiny).view(-1, *[1] * (importance.dim() - 1))
    return LayerOutput(model, layer), lambda features, _: -(features * importance).sum()


def _naa(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, layer: str, path_steps: int = NAA_STEPS,
    gamma: float = NAA_GAMMA,
) -> tuple[nn.Module, Objective]:
    check_steps(path_steps, "path_steps")
    if not gamma >= 0.0:
        raise InputError(f"gamma must be >= 0, got {gamma}")
    attention = _aggregate_gradient(model, layer, [x * (m / path_steps) for m in range(path_steps)], labels) / path_steps
    with torch.no_grad():
        baseline = LayerOutput(model, layer)(torch.zeros_like(x))

    def weighted_attribution(features: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
        attribution = (features - baseline) * attention
        # sum max(A, 0) - gamma sum max(-A, 0) = sum A - (gamma - 1) sum max(-A, 0): at gamma 1 exactly sum A.
        negative = attribution.clamp(max=0.0).neg().sum() if gamma != 1.0 else 0.0
        return -(attribution.sum() - (gamma - 1.0) * negative)

    return LayerOutput(model, layer), weighted_attribution


def _ilpd(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, layer: str, coef: float = ILPD_COEF,
    sigma: float = ILPD_SIGMA, generator: torch.Generator | None = None,
) -> tuple[nn.Module, None]:
    check_probability(coef, "coef")
    if not sigma >= 0.0:
        raise InputError(f"sigma must be >= 0, got {sigma}")
    return _DecayedModel(model, layer, x.detach(), coef, sigma, generator), None


def _ila_knobs(*, layer: str, ila_steps: int = ILA_STEPS, baseline: torch.Tensor | None = None) -> None:
    """ILA's own parameters (documented on :func:`ila`)."""


def _ila(arguments: dict[str, Any], knobs: dict[str, Any]) -> torch.Tensor:
    model, x = arguments["model"], arguments["x"]
    labels = _labels(model, x, arguments.pop("y"))
    check_steps(knobs["ila_steps"], "ila_steps")
    baseline = knobs["baseline"]
    if baseline is None:
        baseline = iterative_attack(**arguments, y=labels)
    elif not isinstance(baseline, torch.Tensor) or baseline.shape != x.shape:
        raise InputError(f"baseline must be adversarial images shaped like x {tuple(x.shape)}, got "
                         f"{tuple(baseline.shape) if isinstance(baseline, torch.Tensor) else type(baseline).__name__}")
    features = LayerOutput(model, knobs["layer"])
    with torch.no_grad():
        clean = features(x)
        direction = features(baseline.to(x)) - clean

    def projection(adversarial: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
        return ((adversarial - clean) * direction).sum()

    ila_phase = {**arguments, "model": features, "steps": knobs["ila_steps"], "momentum": 0.0}
    return iterative_attack(**ila_phase, y=labels, loss=projection)


def _feature_level(setup: Callable[..., tuple[nn.Module, Objective | None]]) -> Callable[[dict, dict], torch.Tensor]:
    """MI-FGSM on the model and objective that ``setup(model, x, labels, **knobs)`` returns."""

    def run(arguments: dict[str, Any], knobs: dict[str, Any]) -> torch.Tensor:
        labels = _labels(arguments["model"], arguments["x"], arguments.pop("y"))
        attacked, loss = setup(arguments["model"], arguments["x"], labels, **knobs)
        return iterative_attack(**{**arguments, "model": attacked}, y=labels, loss=loss)

    return run


LAYER_DOC = """layer: the attacked layer, a name of ``model.named_modules()`` (e.g. ``network.layer2.7`` for a zoo
            ResNet-152)"""

fia = register("fia")(assemble("fia", f"""FIA (Wang et al., ICCV 2021): descend the layer's features weighted by their aggregate importance.

    Eq. 6: ``Delta = sum_n d p_y(x * M_n) / d f_k`` over ``ensemble`` random pixel masks ``M_n`` (each pixel
    and channel kept with probability ``1 - drop_prob``), normalised to unit L2 norm per image; Eq. 5: the
    attack minimises ``sum(Delta * f_k(x_adv))`` with MI-FGSM (Algorithm 1). ``p_y`` is the softmax
    probability of the true class. ``model`` must be an ``nn.Module`` (its mode is left as it is); ``y=None``
    uses its predictions; the other parameters before ``layer`` are :func:`mi_fgsm`'s (eps 16/255, 10 steps
    of 1.6/255, mu 1.0). Layers as the FIA paper: ``Mixed_5b`` for Inc-v3, ``layer2.7`` for ResNet-152,
    ``features.15`` for VGG16. Returns detached adversarial images in [0, 1] within ``eps`` of ``x``.

    Args:
        {LAYER_DOC}.
        ensemble: masked copies N (30).
        drop_prob: p_d (0.3; the paper uses 0.1 against defended models).
        generator: draws the masks; ``None``: torch's global generator, in torchattack's order.
    """, mi_fgsm, _fia, _feature_level(_fia), drop=("target", "generator")))

naa = register("naa")(assemble("naa", f"""NAA (Zhang et al., CVPR 2022): descend the neuron attribution of the layer to the true class.

    Integrated attention (Eq. 8-9): ``IA = (1/N) sum_{{m=0}}^{{N-1}} d p_y((m/N) x) / d y_k``, the left Riemann
    sum of the path from the black baseline ``x' = 0`` (as the public ports compute it); attribution
    ``A = (y_k(x_adv) - y_k(x')) * IA``; weighted attribution (Eq. 11, linear ``phi``)
    ``WA = sum max(A, 0) - gamma * sum max(-A, 0)``, minimised with MI-FGSM. Parameters before ``layer`` as
    :func:`fia`; layers as the NAA paper: ``Mixed_5b`` for Inc-v3, ``Mixed_5e`` for Inc-v4, ``layer2.7`` for
    ResNet-152. Returns detached adversarial images in [0, 1] within ``eps`` of ``x``.

    Args:
        {LAYER_DOC}.
        path_steps: N, points on the integration path (30).
        gamma: weight of the negative attributions (1.0: ``WA`` is the plain sum of ``A``).
    """, mi_fgsm, _naa, _feature_level(_naa), drop=("target", "generator")))

ilpd = register("ilpd")(assemble("ilpd", f"""ILPD (Li et al., NeurIPS 2023): ascend the cross-entropy with the layer's perturbation decayed.

    Eq. 5: at every step the layer's output ``h(x_adv)`` is replaced by ``coef * h(x_adv) + (1 - coef) *
    h(x + sigma * n)``, ``n ~ N(0, I)`` drawn afresh, so the rest of the network sees a perturbation shrunk to
    ``coef`` of its size at that layer, and the loss is the cross-entropy of the result, ascended with
    MI-FGSM's momentum (as torchattack's port; ``momentum=0`` is the I-FGSM form). Parameters before
    ``layer`` as :func:`fia`; layers as the ILPD paper: ``layer2.3`` for ResNet-50, ``features.27`` for VGG19.
    Returns detached adversarial images in [0, 1] within ``eps`` of ``x``.

    Args:
        {LAYER_DOC}.
        coef: gamma, the decay factor in [0, 1] (0.1).
        sigma: std of the noise on the clean image at each step, [0, 1] units (0.05).
        generator: draws the noise; ``None``: torch's global generator, in torchattack's order.
    """, mi_fgsm, _ilpd, _feature_level(_ilpd), drop=("target", "generator")))


ila = register("ila")(assemble("ila", f"""ILA (Huang et al., ICCV 2019): push the layer's perturbation further along a baseline attack's.

    A baseline adversarial image ``x'`` (``baseline``, or MI-FGSM with this call's ``eps``, ``steps``,
    ``step_size`` and ``momentum``) fixes the direction ``d = f_k(x') - f_k(x)`` at the layer; then
    ``ila_steps`` I-FGSM iterations from ``x`` ascend the ILA projection loss (ILAP)
    ``(f_k(x_adv) - f_k(x)) . d / ||d||^2``, here without the constant ``1 / ||d||^2``, which changes no
    sign step. The ILA phase takes no momentum, as in the paper (and TransferAttack's port, whose baseline is
    MI-FGSM too). Parameters before ``layer`` as :func:`fia`; the paper picks a middle layer (``layer2``-``layer3``
    of a ResNet). Returns detached adversarial images in [0, 1] within ``eps`` of ``x``.

    Args:
        {LAYER_DOC}.
        ila_steps: the ILA phase's iterations (10), of ``step_size`` each.
        baseline: adversarial images ``(B, C, H, W)`` of any attack on ``x`` (Python API only); ``None``:
            MI-FGSM's.
    """, mi_fgsm, _ila_knobs, _ila, drop=("target", "generator")))


class _DecayedModel(nn.Module):
    """``model`` whose ``layer`` output is pulled towards that of a freshly noised clean image at every call."""

    def __init__(self, model: nn.Module, layer: str, x: torch.Tensor, coef: float, sigma: float,
                 generator: torch.Generator | None) -> None:
        super().__init__()
        self.model, self.tap, self.layer = model, LayerOutput(model, layer), find_layer(model, layer)
        self.x, self.coef, self.sigma, self.generator = x, coef, sigma, generator

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        device = self.generator.device if self.generator is not None else self.x.device
        noise = torch.randn(self.x.shape, dtype=self.x.dtype, device=device, generator=self.generator).to(self.x.device)
        with torch.no_grad():
            reference = self.tap(self.x + self.sigma * noise)
        with replaced_output(self.layer, lambda output: self.coef * output + (1 - self.coef) * reference):
            return self.model(inputs)


def _labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """``y`` checked, or the model's predictions on ``x``."""
    check_images(x)
    if y is not None:
        check_labels(y, x.shape[0], "y")
        return y
    with torch.no_grad():
        return model(x).argmax(1)


def _aggregate_gradient(model: nn.Module, layer: str, inputs: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """``sum_n d sum_b softmax(model(inputs[n]))[b, y_b] / d f_layer``: backward from the logits to the layer only."""
    module = find_layer(model, layer)
    total = None
    for batch in inputs:
        with torch.enable_grad():
            # The input needs grad so the layer's output is in the graph even when the parameters are frozen.
            logits, features = logits_and_layer(model, module, batch.detach().requires_grad_(True))
            probability = F.softmax(logits, dim=1).gather(1, labels.view(-1, 1)).sum()
            (gradient,) = torch.autograd.grad(probability, features)
        total = gradient if total is None else total.add_(gradient)
    return total


def _bernoulli(probability: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None or generator.device == probability.device:
        return torch.bernoulli(probability, generator=generator)
    return torch.bernoulli(probability.to(generator.device), generator=generator).to(probability.device)
