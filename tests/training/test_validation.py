import math

import torch
from torch import nn

from nrp.io import read_image
from nrp.training.validation import psnr, validate


def test_psnr_of_a_constant_offset_has_a_known_value():
    clean = torch.full((2, 3, 4, 4), 0.5)
    assert torch.allclose(psnr(clean + 0.1, clean), torch.full((2,), 20.0))
    assert math.isclose(psnr(clean + 0.01, clean)[0].item(), 40.0, rel_tol=1e-4)


def test_a_perfect_purifier_scores_better_than_its_input_and_the_grid_holds_three_columns(tmp_path):
    torch.manual_seed(0)
    clean = torch.rand(2, 3, 8, 8)
    perturbed = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    oracle = lambda x: clean  # noqa: E731 - a purifier that restores the clean images exactly
    scores = validate(oracle, nn.Conv2d(3, 4, 3), clean, perturbed, tmp_path / "grid.png")
    assert scores["psnr_purified"] > 100 and scores["psnr_perturbed"] < 30
    assert scores["feature_distance_purified"] == 0.0 < scores["feature_distance_perturbed"]
    grid = read_image(tmp_path / "grid.png")
    assert grid.shape == (3, 2 + 2 * (8 + 2), 2 + 3 * (8 + 2))  # 2 rows x 3 columns, 2-pixel padding
    top_left = grid[:, 2:10, 2:10]
    assert (top_left - clean[0]).abs().max() <= 0.5 / 255 + 1e-6
