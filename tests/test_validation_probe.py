"""The smallest-input probe: the size it finds, and silence on a traced network's expected failures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrp.errors import InputError, InputTooSmallError
from nrp.validation import minimum_input_size


class FunctionalConvs(nn.Module):
    """Two unpadded 5x5 convolutions called functionally (as EfficientNet-Lite's same-padding convs are), so a
    trace runs them from its generated code: torch.fx then prints a traceback to stderr on every failed call."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Parameter(torch.randn(4, 3, 5, 5))
        self.second = nn.Parameter(torch.randn(4, 4, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, self.first), self.second)


def test_the_probe_finds_the_smallest_side_of_a_traced_network_and_prints_nothing(capsys):
    traced = torch.fx.symbolic_trace(FunctionalConvs())
    assert minimum_input_size(traced) == 9
    assert minimum_input_size(traced, gradients=True) == 9
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_size_check_of_the_project_counts_as_too_small_but_an_argument_check_propagates():
    def needs_eight(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 8:
            raise InputTooSmallError(f"side {x.shape[-1]} < 8")
        return x

    def unknown_layer(x: torch.Tensor) -> torch.Tensor:
        raise InputError("model has no layer 'nope'")

    assert minimum_input_size(needs_eight) == 8
    with pytest.raises(InputError, match="no layer 'nope'"):
        minimum_input_size(unknown_layer)
