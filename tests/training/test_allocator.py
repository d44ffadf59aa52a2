"""Retaining freed memory (glibc mallopt): large blocks are reused instead of being faulted in again."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# Allocates and frees a 64 MiB tensor 20 times; prints the minor page faults that took (a fresh process each, since
# the setting is process-wide).
SCRIPT = """
import resource, sys, torch
from nrp.training.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
torch.empty(16 << 20).fill_(1)
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(16 << 20).fill_(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_a_retained_heap_reuses_large_blocks_instead_of_faulting_them_in_again():
    pages = (64 << 20) // 4096
    default, retained = page_faults("system"), page_faults("retain")
    assert default >= 10 * pages  # glibc maps and unmaps each 64 MiB block: every allocation faults all its pages
    assert retained <= 2 * pages  # kept: at most the first allocations fault
