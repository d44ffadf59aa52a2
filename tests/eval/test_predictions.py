"""A randomised defense draws from the generator of its (set, defense, batch), never from the caller's RNG."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nrp.eval.predictions import defend
from nrp.eval.sets import batch_generator


class Noise(nn.Module):
    """A randomised defense drawing from the global RNG."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.rand_like(x) - 0.5) / 8


def test_a_randomised_defense_draws_from_its_batch_generator_and_leaves_the_global_rng():
    x, noise = torch.full((2, 3, 8, 8), 0.5), Noise()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = defend(noise, x, batch_generator(0, "set/defense", 1))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)  # another global state: the same draws
    assert torch.equal(defend(noise, x, batch_generator(0, "set/defense", 1)), first)
    assert not torch.equal(defend(noise, x, batch_generator(0, "set/defense", 2)), first)
    assert first.min() >= 0.5 - 1 / 16 and first.max() <= 0.5 + 1 / 16 and not torch.equal(first, x)


class Recorder(nn.Module):
    """A 'classifier' that keeps every batch it is shown and answers class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(x.shape[0], 10)


def test_the_grid_shows_the_randomised_defense_draw_that_was_scored(tmp_path):
    from nrp.eval.components import Component
    from nrp.eval.predictions import defended_as_scored, predict_set
    from nrp.eval.sets import ImageSet
    from nrp.io.write import write_image

    stems = [f"p{i}" for i in range(5)]
    images = ImageSet("m", Component("fgsm"), 16.0, tmp_path, Path("m/fgsm/16"))
    images.folder.mkdir(parents=True)
    for i, stem in enumerate(stems):
        write_image(torch.full((3, 8, 8), i / 8), images.folder / f"{stem}.png")
    recorder, noise = Recorder(), Noise()
    predict_set(images, stems, {"noise": ["t"]}, {"noise": noise}, lambda name: recorder, 2, 7, torch.device("cpu"))
    scored = torch.cat(recorder.seen)  # batches of 2, 2 and 1, in order
    shown = defended_as_scored(images, stems, [4, 1, 2], "noise", noise, 2, 7, torch.device("cpu"))
    assert torch.equal(shown, scored[[4, 1, 2]])
    stored = torch.stack([torch.full((3, 8, 8), i / 8) for i in (4, 1, 2)])
    torch.manual_seed(7)  # the earlier grid: the picked images alone, under the run seed, another draw
    assert not torch.equal(noise(stored).clamp(0, 1), shown)
