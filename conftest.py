"""Doctest set-up: the examples in the library's docstrings run with ``torch`` and ``nn`` in scope."""

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def doctest_names(doctest_namespace):
    doctest_namespace["torch"] = torch
    doctest_namespace["nn"] = nn
