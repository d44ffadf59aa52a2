"""A randomised defense draws from the generator of its (set, defense, batch), never from the caller's RNG."""

from __future__ import annotations

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
