"""Keep freed host memory in the process, so a CPU training step stops re-faulting its activations' pages.

glibc hands allocations over 128 KiB to ``mmap`` and returns them to the kernel on ``free``; a training
step of the study's CNN allocates tens of MB of activations and gradients, so every step faulted in about
10,000-15,000 fresh 4 KiB pages and had the kernel zero them (keeping them: 26% more training img/s on the
2-core AVX-512 EPYC, docs/results.md, Training speed). With mmap off and the trim threshold raised, freed
blocks stay in the heap for the next step, as PyTorch's GPU caching allocator keeps device memory. The cost:
the process holds its peak heap until it exits, which for a training process is its working set anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_UP_TO_BYTES = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory; False where the C library is not glibc (macOS, musl)."""
    libc_name = ctypes.util.find_library("c")
    if platform.libc_ver()[0] != "glibc" or libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name)
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO_BYTES))
