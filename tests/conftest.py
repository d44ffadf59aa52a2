"""Settings shared by the whole suite."""

import gc
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision


@pytest.fixture(autouse=True)
def single_thread():
    """Run on one thread: the tensors are tiny, and a thread pool on a busy 2-core machine costs far more than it gives."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


COLLECT_ABOVE_MB = 2048
"""Resident memory past which a test's end runs a full garbage collection (see ``bounded_memory``)."""


def _resident_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux: no guard
        return 0.0


@pytest.fixture(autouse=True)
def bounded_memory():
    """Free reference cycles (traced graphs, models held by closures) once the process passes 2 GB.

    Python collects its oldest generation rarely; in a suite that builds hundreds of networks, cyclic garbage
    holding their weights piled up to 9 GB. Reading the resident size costs microseconds, so the full
    collection runs only when it can matter.
    """
    yield
    if _resident_mb() > COLLECT_ABOVE_MB:
        gc.collect()


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory) -> Callable[[int], Path]:
    """``make(n)``: a file of random VGG16 weights for ``features[:n]``, as a user's ``--backbone-weights``."""
    made: dict[int, Path] = {}

    def make(layers: int) -> Path:
        if layers not in made:
            torch.manual_seed(0)
            features = torchvision.models.vgg16(weights=None).features[:layers]
            made[layers] = tmp_path_factory.mktemp("vgg") / f"vgg16_features_{layers}.pth"
            torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, made[layers])
        return made[layers]

    return make


@pytest.fixture
def fingerprint() -> Callable[[Path], dict[str, str]]:
    """Map every file under a folder (relative path) to the SHA-256 of its bytes."""

    def take(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    return take


def _rank_worker(rank: int, function: Callable, folder: str) -> None:
    import torch.distributed as dist

    from nrp.distributed import DistributedContext

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        torch.save(function(DistributedContext(rank=rank, world_size=2)), f"{folder}/rank_{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture
def two_ranks(tmp_path) -> Callable[[Callable], list]:
    """``run(function)``: ``[function(rank 0's context), function(rank 1's context)]``, run in two forked processes
    of one gloo process group; each return value comes back through ``torch.save``."""

    def run(function: Callable) -> list:
        folder = tmp_path / "ranks"
        folder.mkdir(exist_ok=True)
        torch.multiprocessing.start_processes(_rank_worker, args=(function, str(folder)), nprocs=2, start_method="fork")
        return [torch.load(folder / f"rank_{rank}.pt", weights_only=False) for rank in range(2)]

    return run
