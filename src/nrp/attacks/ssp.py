"""The Self-supervised Perturbation (SSP) attack, Algorithm 1 of Naseer et al. (CVPR 2020)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms import functional as TF

from nrp.attacks import defaults
from nrp.attacks.checks import check_kernel_size, check_probability
from nrp.attacks.distances import get_distance
from nrp.attacks.transforms import gaussian_kernel1d, input_diversity, smooth_gradient
from nrp.errors import InputError

DEFAULT_EPS = 16 / 255
DEFAULT_STEP_SIZE = 0.01
DEFAULT_STEPS = 100
STARTS = ("normal", "uniform")
REFERENCE_RESIZE, REFERENCE_CROP = 256, 224  # the script's Resize(256) + CenterCrop(224)


def ssp(
    x: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    eps: float = DEFAULT_EPS,
    step_size: float = DEFAULT_STEP_SIZE,
    steps: int = DEFAULT_STEPS,
    distance: str = "mse",
    start: str = "normal",
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    init: torch.Tensor | None = None,
    ti_kernel: int | None = None,
    diversity_prob: float = 0.0,
    diversity_scale: float = defaults.DIVERSITY_SCALE,
    reference: bool = False,
) -> torch.Tensor:
    """Label-free attack: maximise the distortion of ``feature_extractor``'s features inside an L-inf ball.

    Algorithm 1 / Eq. 2-4: sign-gradient ascent on ``Delta(F(x), F(x'))``, projecting ``x'`` into
    ``[x - eps, x + eps]`` and [0, 1] after every step. The clean features are computed once.

    Args:
        x: clean images ``(B, 3, H, W)`` in [0, 1].
        feature_extractor: any differentiable map of [0, 1] images to features (e.g.
            :func:`~nrp.features.build_feature_extractor`); its train/eval mode is left as it is.
        eps: L-inf budget, [0, 1] units (16/255 in the paper).
        step_size: size of each sign-gradient step, [0, 1] units (0.01 in the authors' code).
        steps: iterations (100 in the paper and the authors' code).
        distance: ``"mse"`` (the authors' code), ``"mae"`` (the paper's Eq. 5) or ``"cosine"``.
        start: the random transformation R of Algorithm 1. ``"normal"`` follows the authors' code: the
            first iterate is pure standard-normal noise (not the image plus noise), so the first projection
            puts most pixels on the ball's boundary. ``"uniform"``: ``x`` plus uniform noise in the ball.
        generator: random generator for the start, for reproducible results (on any device).
        on_step: called after each step with ``(step, distance)``, ``distance`` ``(B,)`` being the
            per-sample feature distance of the iterate the step started from.
        init: an explicit first iterate ``(B, 3, H, W)`` replacing the random start (e.g. noise drawn for a
            whole global batch and sliced per process, so that distributed training matches one process).
        ti_kernel: an extension, not in the paper: smooth each step's gradient with TI's Gaussian kernel of this
            odd side (Dong et al., CVPR 2019) before taking its sign, which gives low-frequency feature
            distortions like those of TI attacks; ``None`` (default): Algorithm 1 as published.
        diversity_prob: an extension, not in the paper: with this probability per step, measure the distortion
            on DIM's random resize-and-pad of both images (the same draw for the clean and the adversarial
            batch, from ``generator``), which makes the perturbation survive rescaling and shifts as DIM's do;
            0 (default): Algorithm 1 as published.
        diversity_scale: DIM's resize range (see :func:`~nrp.attacks.transforms.diversity_bounds`).
        reference: reproduce the authors' ``ssp.py`` exactly: 100 fixed iterations of 0.01 from unscaled
            ``N(0, 1)`` noise (projected into the ball by the first step), the loss being ``MSELoss`` averaged
            over the whole batch and every feature (not per image). Any other ``steps``, ``step_size``,
            ``distance``, ``start``, ``init`` or extension raises (the script ignores its ``--iters``; we
            refuse instead of ignoring). See :func:`reference_preprocess` for the script's resizing.

    Returns:
        adversarial images ``(B, 3, H, W)`` in [0, 1] with ``|x_adv - x| <= eps``, detached.

    Example:
        >>> features = torch.nn.Conv2d(3, 4, 3)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> x_adv = ssp(x, features, eps=8 / 255, steps=5)
        >>> bool((x_adv - x).abs().max() <= 8 / 255 + 1e-6)
        True
    """
    _validate(x, eps, step_size, steps, start)
    if reference:
        _check_reference(steps, step_size, distance, start, init, ti_kernel, diversity_prob)
    check_kernel_size(ti_kernel)
    check_probability(diversity_prob, "diversity_prob")
    measure = get_distance(distance)
    x = x.detach()
    if diversity_prob == 0.0:
        with torch.no_grad():
            clean_features = feature_extractor(x)
    lower, upper = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    kernel = None if ti_kernel is None else gaussian_kernel1d(ti_kernel, dtype=x.dtype, device=x.device)
    x_adv = _random_start(x, eps, start, generator) if init is None else init.detach().to(x)
    for step in range(steps):
        x_adv.requires_grad_(True)
        if diversity_prob > 0.0:
            per_sample = _diverse_distance(x, x_adv, feature_extractor, measure, diversity_prob, diversity_scale, generator)
        else:
            adv_features = feature_extractor(x_adv)
            per_sample = measure(adv_features, clean_features)
        # The script's nn.MSELoss() averages over the batch too; the same signs, but not always the same bits.
        loss = F.mse_loss(adv_features, clean_features) if reference else per_sample.sum()
        (gradient,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            if kernel is not None:
                gradient = smooth_gradient(gradient, kernel)
            x_adv = torch.minimum(torch.maximum(x_adv + step_size * gradient.sign(), lower), upper)
        if on_step is not None:
            on_step(step, per_sample.detach())
    return x_adv.detach()


def _diverse_distance(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    prob: float,
    scale: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Per-sample feature distance of ``x_adv`` from ``x`` after one DIM transformation applied to both."""
    transformed = input_diversity(torch.cat([x, x_adv]), prob, scale, generator)
    with torch.no_grad():
        clean_features = feature_extractor(transformed[: len(x)])
    return measure(feature_extractor(transformed[len(x):]), clean_features)


def _random_start(x: torch.Tensor, eps: float, start: str, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    if start == "normal":
        return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    noise = torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    return (x + (2 * noise - 1) * eps).clamp(0.0, 1.0)


def reference_preprocess(x: torch.Tensor) -> torch.Tensor:
    """The authors' SSP script's input pipeline: resize the shorter side to 256, then centre-crop 224x224.

    Bilinear with antialiasing on float [0, 1] tensors ``(B, 3, H, W)``; the script resizes 8-bit PIL images
    (PIL's bilinear filter), which can differ by about one grey level. Returns ``(B, 3, 224, 224)``.
    """
    resized = TF.resize(x, [REFERENCE_RESIZE], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, [REFERENCE_CROP, REFERENCE_CROP]).clamp(0.0, 1.0)


def _check_reference(
    steps: int, step_size: float, distance: str, start: str, init: torch.Tensor | None, ti_kernel: int | None,
    diversity_prob: float,
) -> None:
    given = {"steps": (steps, DEFAULT_STEPS), "step_size": (step_size, DEFAULT_STEP_SIZE), "distance": (distance, "mse"),
             "start": (start, "normal"), "init": (init, None), "ti_kernel": (ti_kernel, None),
             "diversity_prob": (diversity_prob, 0.0)}
    changed = [name for name, (value, fixed) in given.items() if isinstance(value, torch.Tensor) or value != fixed]
    if changed:
        raise InputError(
            f"reference mode fixes the authors' settings (100 steps of 0.01, mse, normal start, no extensions); "
            f"it cannot take {', '.join(changed)}"
        )


def _validate(x: torch.Tensor, eps: float, step_size: float, steps: int, start: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
    if not 0.0 <= eps <= 1.0:
        raise InputError(f"eps must be in [0, 1] ([0, 255] on the command line), got {eps}")
    if step_size <= 0:
        raise InputError(f"step_size must be > 0, got {step_size}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    if start not in STARTS:
        raise InputError(f"unknown start '{start}'; known: {', '.join(STARTS)}")
