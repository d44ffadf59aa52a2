"""Held-out validation of a purifier during training: PSNR, feature distances and an image grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.utils import make_grid

from nrp.attacks.distances import mae
from nrp.io import write_image


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of images ``(B, 3, H, W)`` in [0, 1], per image ``(B,)``."""
    mse = (a - b).pow(2).flatten(1).mean(1).clamp(min=1e-12)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def validate(
    purifier: Callable[[torch.Tensor], torch.Tensor],
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    perturbed: torch.Tensor,
    grid_path: Path | None = None,
) -> dict[str, float]:
    """Score ``purifier`` on a fixed perturbed set and optionally save a clean | perturbed | purified grid.

    Returns mean PSNR (dB) against the clean images and mean absolute feature distance to the clean
    features, for the perturbed input and for its purified version.
    """
    purified = purifier(perturbed).clamp(0, 1)
    clean_features = feature_extractor(clean)
    scores = {
        "psnr_perturbed": psnr(perturbed, clean).mean().item(),
        "psnr_purified": psnr(purified, clean).mean().item(),
        "feature_distance_perturbed": mae(feature_extractor(perturbed), clean_features).mean().item(),
        "feature_distance_purified": mae(feature_extractor(purified), clean_features).mean().item(),
    }
    if grid_path is not None:
        rows = torch.stack((clean, perturbed, purified), dim=1).flatten(0, 1)  # image-major: c0 p0 q0 c1 ...
        write_image(make_grid(rows.cpu(), nrow=3, padding=2, pad_value=1.0), grid_path)
    return scores
