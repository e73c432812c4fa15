"""keep_freed_memory: freed blocks are reused, not faulted in again from the kernel."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A training step's pattern in miniature: buffers of 64, 32, 48 and 16 MB allocated, touched and freed in an
# overlapping order, eight times; print the last round's page faults.
ROUNDS = """
import resource, sys, torch
from fer_lightning.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a, b, c = torch.ones(16 * 2**20), torch.ones(8 * 2**20), torch.ones(12 * 2**20)
    del a
    d = torch.ones(4 * 2**20)
    del b, c, d
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _last_round_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the C library here is not glibc")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    pages = 160 * 2**20 // 4096
    assert _last_round_faults("default") > pages // 2  # glibc's default: each buffer is mmapped afresh
    assert _last_round_faults("keep") < pages // 20
