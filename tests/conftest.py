"""Settings shared by the whole suite."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Run on one thread: the tensors are tiny, and a thread pool on a busy 2-core machine costs far more than it gives."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
