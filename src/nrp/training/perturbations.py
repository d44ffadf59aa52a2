"""Where each mini-batch's perturbed images x' come from (Algorithm 2, step 3, and the Figure 5 ablations)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nrp.attacks import defaults, fgsm, ssp
from nrp.attacks.transforms import gaussian_kernel1d, smooth_gradient
from nrp.errors import InputError

PERTURBATIONS = ("ssp", "gaussian", "fgsm")
# The input-diversity share starts this fraction of eps away from the clean image, as DIM starts at it: a
# feature distance has no gradient at x itself, and a full-size noise start would dominate the result.
DIVERSE_START_FRACTION = 1 / 8
Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PerturbationSettings:
    """The knobs of every source, in [0, 1] units."""

    eps: float = 16 / 255
    ssp_steps: int = 10
    ssp_step_size: float = 0.01
    ssp_distance: str = "mse"
    ssp_ti_kernel: int | None = None
    ssp_ti_fraction: float = 0.5
    ssp_di_fraction: float = 0.0
    noise_std: float = 16 / 255
    clean_fraction: float = 0.0


def make_perturbation(
    kind: str,
    settings: PerturbationSettings,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
    di_feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Perturbation:
    """Return ``perturb(x, noise) -> x'``; ``noise`` is a standard-normal tensor shaped like ``x``.

    The caller draws ``noise`` (for the whole global batch, then its own slice), which makes the result
    independent of how the batch is split across processes and lets a resumed run redraw it exactly.
    With ``clean_fraction`` > 0 (an extension, not in the paper) that share of the images is passed through
    unperturbed, so the purifier also learns to leave clean images alone (:func:`keep_some_clean`).

    Kinds:
        ``ssp``: Algorithm 1 on ``feature_extractor``, starting from ``noise`` as the authors' code does. With
            ``ssp_ti_kernel`` set (an extension, not in the paper), a share ``ssp_ti_fraction`` of the images
            gets SSP with TI-smoothed gradients instead, started from the sign of the Gaussian-blurred noise
            (:func:`mixed_ssp`): low-frequency distortions besides SSP's high-frequency ones. With
            ``di_feature_extractor`` given (an extension, not in the paper; typically a deeper layer or the
            logits of the same backbone), a share ``ssp_di_fraction`` of the images gets SSP on it through DIM's
            input diversity instead (:func:`with_diverse_share`): label-free distortions shaped like DIM's.
        ``gaussian``: the paper's GNP ablation, ``x + noise_std * noise`` clipped to the eps ball and [0, 1].
        ``fgsm``: the FGSP ablation, one FGSM step of size eps against ``classifier``'s own predictions.
    """
    source = _make_source(kind, settings, feature_extractor, classifier)
    if kind == "ssp" and di_feature_extractor is not None and settings.ssp_di_fraction > 0.0:
        source = _add_diverse_share(source, di_feature_extractor, settings)
    if settings.clean_fraction <= 0.0:
        return source
    return lambda x, noise: keep_some_clean(source, x, noise, settings.clean_fraction)


def _make_source(
    kind: str,
    settings: PerturbationSettings,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Perturbation:
    """The perturbation of ``kind`` alone (see :func:`make_perturbation`)."""
    eps = settings.eps
    if kind == "ssp":
        if feature_extractor is None:
            raise InputError("the ssp perturbation needs a feature extractor")
        if settings.ssp_ti_kernel is not None:
            return lambda x, noise: mixed_ssp(x, noise, feature_extractor, settings)
        return lambda x, noise: ssp(
            x, feature_extractor, eps=eps, step_size=settings.ssp_step_size, steps=settings.ssp_steps,
            distance=settings.ssp_distance, init=noise,
        )
    if kind == "gaussian":
        return lambda x, noise: torch.minimum(torch.maximum(x + settings.noise_std * noise, x - eps), x + eps).clamp(0, 1)
    if kind == "fgsm":
        if classifier is None:
            raise InputError("the fgsm perturbation needs a classifier (--fgsm-model)")
        return lambda x, noise: fgsm(classifier, x, eps=eps)
    raise InputError(f"unknown perturbation '{kind}'; known: {', '.join(PERTURBATIONS)}")


def mixed_ssp(
    x: torch.Tensor,
    noise: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    settings: PerturbationSettings,
) -> torch.Tensor:
    """SSP on some images, SSP with TI-smoothed gradients on the others (a share ``ssp_ti_fraction``).

    Which images get the smoothed variant is read off the noise itself (its first value below the normal
    quantile of the fraction), so the choice follows each sample wherever the global batch is split.
    """
    kernel = gaussian_kernel1d(settings.ssp_ti_kernel, dtype=x.dtype, device=x.device)
    smoothed = _below_quantile(noise[:, 0, 0, 0], settings.ssp_ti_fraction)
    plain = ~smoothed
    common = {"eps": settings.eps, "step_size": settings.ssp_step_size, "steps": settings.ssp_steps, "distance": settings.ssp_distance}
    perturbed = torch.empty_like(x)
    if plain.any():
        perturbed[plain] = ssp(x[plain], feature_extractor, init=noise[plain], **common)
    if smoothed.any():
        start = (x[smoothed] + settings.eps * smooth_gradient(noise[smoothed], kernel).sign()).clamp(0, 1)
        perturbed[smoothed] = ssp(x[smoothed], feature_extractor, init=start, ti_kernel=settings.ssp_ti_kernel, **common)
    return perturbed


def _add_diverse_share(
    source: Perturbation, feature_extractor: Callable[[torch.Tensor], torch.Tensor], settings: PerturbationSettings
) -> Perturbation:
    return lambda x, noise: with_diverse_share(source, x, noise, feature_extractor, settings)


def with_diverse_share(
    source: Perturbation,
    x: torch.Tensor,
    noise: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    settings: PerturbationSettings,
) -> torch.Tensor:
    """``source(x, noise)``, except that a share ``ssp_di_fraction`` gets SSP through DIM's input diversity.

    That share (the images whose third noise value is below the fraction's normal quantile) is attacked on
    ``feature_extractor`` with DIM's transformation probability and resize range. Like DIM it starts close
    to the clean image, a random sign step of ``DIVERSE_START_FRACTION * eps`` away (SSP's full-size noise
    start would leave the result mostly noise, where DIM's perturbations are shaped by the gradient alone);
    the transformations are drawn from a generator seeded by the noise, so a resumed run redraws them.
    """
    diverse = _below_quantile(noise[:, 2, 0, 0], settings.ssp_di_fraction)
    perturbed = torch.empty_like(x)
    if (~diverse).any():
        perturbed[~diverse] = source(x[~diverse], noise[~diverse])
    if diverse.any():
        generator = torch.Generator(device=x.device).manual_seed(_seed_from(noise))
        start = (x[diverse] + DIVERSE_START_FRACTION * settings.eps * noise[diverse].sign()).clamp(0, 1)
        perturbed[diverse] = ssp(
            x[diverse], feature_extractor, eps=settings.eps, step_size=settings.ssp_step_size, steps=settings.ssp_steps,
            distance=settings.ssp_distance, init=start, generator=generator,
            diversity_prob=defaults.DIVERSITY_PROB, diversity_scale=defaults.DIVERSITY_SCALE,
        )
    return perturbed


def _seed_from(noise: torch.Tensor) -> int:
    """A 63-bit seed read off the first values of ``noise``."""
    head = noise.reshape(-1)[:4].detach().to("cpu", torch.float32).numpy().tobytes()
    return int.from_bytes(head[:8], "little") & (2**63 - 1)


def _below_quantile(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """``(B,)`` mask of the standard-normal ``values`` below the ``fraction`` quantile (exact at 0 and 1)."""
    if fraction <= 0.0 or fraction >= 1.0:
        return torch.full(values.shape, fraction >= 1.0, dtype=torch.bool, device=values.device)
    threshold = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(fraction, dtype=torch.float64)).item()
    return values < threshold


def keep_some_clean(source: Perturbation, x: torch.Tensor, noise: torch.Tensor, fraction: float) -> torch.Tensor:
    """``source(x, noise)``, except that a share ``fraction`` of the images is returned unperturbed.

    The choice is read off the noise (its second value below the standard normal's ``fraction`` quantile),
    so it follows each sample wherever the global batch is split; only the other images are perturbed.
    """
    keep = _below_quantile(noise[:, 1, 0, 0], fraction)
    perturbed = x.clone()
    if (~keep).any():
        perturbed[~keep] = source(x[~keep], noise[~keep])
    return perturbed
