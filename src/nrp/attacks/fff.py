"""Fast Feature Fool (Mopuri et al., BMVC 2017): a data-free universal perturbation that over-excites activations."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models import feature_extraction

from nrp.atomic import atomic_path
from nrp.attacks.checks import check_eps, check_steps
from nrp.attacks.registry import register
from nrp.errors import InputError
from nrp.features import FeatureExtractor, activation_layers, vgg_layer_aliases
from nrp.features.backbones import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

DEFAULT_EPS = 10 / 255  # FFF's xi = 10 (0-255 units)
DEFAULT_ITERATIONS = 10_000  # the paper's Appendix F
DEFAULT_LR = 1 / 255  # Adam's step, [0, 1] units: about a quarter of the ball's radius per 1k iterations at most
PERTURBATION_KEY = "perturbation"
Activations = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]


def fff_objective(activations: Activations) -> torch.Tensor:
    """FFF's objective (Mopuri et al., Eq. 2, negated): ``sum_i log(mean(l_i))`` over the chosen layers, a scalar.

    The log of the product of the layers' mean activations; a layer whose mean is 0 contributes the log of
    the smallest positive float instead of minus infinity.
    """
    layers = list(activations.values()) if isinstance(activations, Mapping) else (
        [activations] if isinstance(activations, torch.Tensor) else list(activations)
    )
    if not layers:
        raise InputError("the feature extractor returned no activations")
    return sum(layer.mean().clamp(min=torch.finfo(layer.dtype).tiny).log() for layer in layers)


@register("fff")
def fff(
    feature_extractor: Callable[[torch.Tensor], Activations],
    shape: tuple[int, int, int] = (3, 224, 224),
    eps: float = DEFAULT_EPS,
    iterations: int = DEFAULT_ITERATIONS,
    lr: float = DEFAULT_LR,
    canvas: float | Sequence[float] = IMAGENET_MEAN,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> torch.Tensor:
    """A universal L-inf perturbation ``delta`` maximising the activations of several layers, without data.

    Mopuri et al.'s FFF: starting from ``U(-eps, eps)``, Adam ascends :func:`fff_objective` of the layers'
    activations on the perturbation alone, and ``delta`` is clipped to ``[-eps, eps]`` after every step. "Alone"
    means on a flat ``canvas`` image: FFF fed ``delta`` to mean-subtracted networks, whose zero input is the
    dataset mean, so the default canvas is the ImageNet mean colour; the network sees ``clip(canvas + delta,
    0, 1)``. The paper's Appendix F runs 10k iterations on VGG-16's activation layers (see
    :func:`vgg_activations`). Runs on the device and dtype of the extractor's first parameter (CPU float32
    if it has none); its train/eval mode is left as it is and its parameters get no ``.grad``.

    Args:
        feature_extractor: maps [0, 1] images ``(1, 3, H, W)`` to the chosen layers' activations: a dict, a
            list, or one tensor.
        shape: ``(C, H, W)`` of the perturbation.
        eps: L-inf radius xi, [0, 1] units (FFF's 10/255).
        iterations: optimisation steps (10,000 in the paper).
        lr: Adam's learning rate, [0, 1] units.
        canvas: grey level or per-channel colour the perturbation is shown on, [0, 1] units.
        generator: random generator for the start (the draw happens on its device).
        on_step: called after each step with ``(iteration, objective)`` of the perturbation it started from.

    Returns:
        ``(C, H, W)`` perturbation in ``[-eps, eps]``, detached; add it to any image with :func:`apply_universal`.

    Example:
        >>> layers = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> delta = fff(layers, shape=(3, 8, 8), eps=10 / 255, iterations=5)
        >>> delta.shape, bool(delta.abs().max() <= 10 / 255)
        (torch.Size([3, 8, 8]), True)
    """
    check_eps(eps)
    check_steps(iterations, "iterations")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if len(shape) != 3 or any(side < 1 for side in shape):
        raise InputError(f"shape must be (C, H, W) with positive sides, got {tuple(shape)}")
    device, dtype = _device_and_dtype(feature_extractor)
    background = torch.as_tensor(canvas, dtype=dtype, device=device).reshape(-1, 1, 1)
    if background.numel() not in (1, shape[0]) or background.min() < 0 or background.max() > 1:
        raise InputError(f"canvas must be one value or {shape[0]} values in [0, 1], got {canvas}")

    start_device = generator.device if generator is not None else device
    delta = torch.empty(shape, dtype=dtype, device=start_device).uniform_(-eps, eps, generator=generator).to(device)
    delta.requires_grad_(True)
    optimizer = torch.optim.Adam([delta], lr=lr, maximize=True)
    for iteration in range(iterations):
        with torch.enable_grad():
            objective = fff_objective(feature_extractor((background + delta).clamp(0.0, 1.0).unsqueeze(0)))
            (delta.grad,) = torch.autograd.grad(objective, delta)
        optimizer.step()
        with torch.no_grad():
            delta.clamp_(-eps, eps)
        if on_step is not None:
            on_step(iteration, objective.item())
        if iteration % 1000 == 0:
            logger.debug("fff iteration %d: objective %.4f", iteration, objective.item())
    return delta.detach()


def apply_universal(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``clip(x + delta, 0, 1)``: one universal perturbation ``(C, H, W)`` added to every image ``(B, C, H, W)``."""
    if delta.dim() == 4 and delta.shape[0] == 1:
        delta = delta[0]
    if x.dim() != 4 or delta.shape != x.shape[1:]:
        raise InputError(
            f"a perturbation of shape {tuple(delta.shape)} cannot be added to images of shape {tuple(x.shape)}; "
            "resize the images (or make the perturbation) to the same (C, H, W)"
        )
    return (x + delta.to(x)).clamp(0.0, 1.0)


def vgg_activations(
    model: nn.Module,
    layers: Sequence[str] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> FeatureExtractor:
    """A frozen extractor returning a dict of activations of ``model`` for FFF.

    Args:
        model: a backbone, e.g. ``torchvision.models.vgg16(weights=...)``. The extractor shares its modules, so
            like :func:`~nrp.features.build_feature_extractor` this freezes them and puts them in eval mode.
        layers: graph node names (``features.3``) or VGG aliases (``conv1_2``); default: for a VGG, the ReLU
            after every convolution ("the activation layers of VGG-16", 13 of them).
        mean, std: the normalisation the backbone expects, applied inside.

    Returns:
        a :class:`~nrp.features.FeatureExtractor` mapping ``(B, 3, H, W)`` in [0, 1] to ``{layer: activation}``.
    """
    aliases = vgg_layer_aliases(model)
    layers = activation_layers(model) if layers is None else layers
    nodes = [aliases.get(layer, layer) for layer in layers]
    _, known = feature_extraction.get_graph_node_names(model.eval())
    unknown = [layer for layer, node in zip(layers, nodes) if node not in known]
    if unknown:
        raise InputError(f"unknown layers {unknown}; e.g. {', '.join(known[1:9])} ...")
    graph = feature_extraction.create_feature_extractor(model, return_nodes=nodes)
    return FeatureExtractor(graph, mean, std, name="fff:" + ",".join(nodes))


def save_perturbation(path: str | os.PathLike, delta: torch.Tensor, **metadata: str | float | int) -> None:
    """Write ``delta`` to a safetensors file atomically, with string ``metadata`` (e.g. ``eps``, ``iterations``)."""
    with atomic_path(path) as tmp:
        save_file({PERTURBATION_KEY: delta.detach().cpu().contiguous()}, str(tmp),
                  metadata={key: str(value) for key, value in metadata.items()})


def load_perturbation(path: str | os.PathLike) -> torch.Tensor:
    """The perturbation saved by :func:`save_perturbation` (CPU tensor ``(C, H, W)``)."""
    if not os.path.isfile(path):
        raise InputError(f"no perturbation file at '{path}'")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:  # a pickle, a truncated file, a bad header
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"'{path}' is not a readable .safetensors perturbation ({reason})") from None
    if PERTURBATION_KEY not in tensors:
        raise InputError(f"'{path}' holds no '{PERTURBATION_KEY}' tensor (found: {', '.join(tensors) or 'none'})")
    delta = tensors[PERTURBATION_KEY]
    if delta.ndim != 3 or delta.shape[0] != 3 or not delta.is_floating_point():
        raise InputError(f"'{path}': the perturbation must be a float tensor (3, H, W), got {delta.dtype} "
                         f"{tuple(delta.shape)}")
    if not torch.isfinite(delta).all():
        raise InputError(f"'{path}': the perturbation holds NaN or infinite values")
    return delta


def _device_and_dtype(module: Callable) -> tuple[torch.device, torch.dtype]:
    if isinstance(module, nn.Module):
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32
