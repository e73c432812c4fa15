"""Compiled steps kept on disk, so that a run's first training step does not trace them again.

``torch.compile`` traces a function anew in every process, even where inductor's own caches already hold its kernels:
for the fused block tails (norm_pool.py) that was 10-15 s of every CPU run's first step on the project's 2-core VMs.
A step wrapped here is compiled ahead of time (``torch.compile(...).aot_compile``, experimental since torch 2.9) for
the first arguments of each kind it meets, with the batch dimension free, saved under inductor's cache dir
(``TORCHINDUCTOR_CACHE_DIR``), and loaded by later processes (the study net's nine steps: about 3 s). An entry is
keyed by everything the compiled code depends on: torch's version, the CPU's vector instructions, the number of
threads (its guards check it: a step compiled under two threads refuses every call under one), the source of the
step's module, and its arguments' dtypes, layouts, non-batch sizes and plain values. The loaded function checks its
own guards as well: where they refuse a batch (inductor's code for a reduction may hold up to some N*H*W only), a
version is compiled for it and kept on disk beside the first, and later processes load every version.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

_FORMAT = 1  # part of every key: bump when what is saved changes


def compiled_on_disk(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` compiled, once per kind of arguments, and kept on disk between processes.

    Every 4-dim tensor argument is taken as a batch of images (N, C, H, W) whose N may vary: one compiled function
    serves every batch size from 2 up, the last short batch too. ``step`` must compile as one graph.
    """
    loaded: dict[tuple[Any, ...], list[Callable[..., Any]]] = {}

    def call(*args: Any) -> Any:
        kind = tuple(_kind(arg) for arg in args)
        if kind not in loaded:
            loaded[kind] = _load_versions(step, kind)
        versions = loaded[kind]
        refusal = None
        for compiled in versions:
            try:
                return compiled(*args)
            except RuntimeError as error:  # inductor's code can hold for some batch sizes only (N*H*W <= 4096, say)
                if "GuardManager check failed" not in str(error):
                    raise
                refusal = " ".join(str(error).split())[:300]
        if refusal:  # said, since it costs seconds; the guard's own words say which bound the batch crossed
            log.info("%s: the compiled step's guards refused a batch of %s (%s); compiling a version for it",
                     step.__name__, _batch_size(args), refusal)
        versions.append(_compile(step, args, entry_path(step, kind, len(versions))))
        return versions[-1](*args)

    return call


def _load_versions(step: Callable[..., Any], kind: tuple[Any, ...]) -> list[Callable[..., Any]]:
    """Every version of ``step`` kept for ``kind``, each in a slot of its own (0, 1, ...): a run whose batches cross
    a guard's bound, or a run at another batch size, adds a version beside the others instead of replacing one that
    the next process would compile again. A slot that does not load ends the list and is removed: the next version
    compiled takes its place (kept, it was warned about by every later run, and replaced only if a batch that the
    versions before it refuse came along)."""
    versions: list[Callable[..., Any]] = []
    while (path := entry_path(step, kind, len(versions))).exists():
        try:
            with path.open("rb") as file:
                versions.append(torch.compiler.load_compiled_function(file, f_globals=step.__globals__))  # its names
        except Exception as error:  # a truncated or foreign file
            log.warning("%s did not load (%s: %s); removed, %s is compiled again where a batch needs it", path,
                        type(error).__name__, error, step.__name__)
            path.unlink(missing_ok=True)
            break
    return versions


def _batch_size(args: tuple[Any, ...]) -> int | None:
    return next((arg.shape[0] for arg in args if isinstance(arg, torch.Tensor) and arg.dim() == 4), None)


def _kind(arg: Any) -> Any:
    """What a compiled step depends on in one argument: a batch's size (dim 0 of a 4-dim tensor) is left out."""
    if isinstance(arg, torch.Tensor):
        shape = tuple(arg.shape[1:]) if arg.dim() == 4 else tuple(arg.shape)
        return "tensor", str(arg.dtype), str(arg.device), shape, arg.stride(), arg.requires_grad
    return type(arg).__name__, repr(arg)


def entry_path(step: Callable[..., Any], kind: tuple[Any, ...], slot: int) -> Path:
    """Where version ``slot`` of the compiled ``step`` for arguments of ``kind`` is kept."""
    module_source = inspect.getsource(sys.modules[step.__module__])
    key = repr((_FORMAT, torch.__version__, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),
                module_source, step.__qualname__, kind))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return entries_dir() / f"{step.__name__}-{digest}-{slot}.bin"


def entries_dir() -> Path:
    """The folder of saved steps, beside inductor's own caches."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir  # 1.3 s of importing, which inference never needs

    return Path(cache_dir()) / "fer_lightning"


def _compile(step: Callable[..., Any], args: tuple[Any, ...], path: Path) -> Callable[..., Any]:
    """``step`` compiled for ``args``, any batch size its guards allow, and saved at ``path``."""
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.dim() == 4:
            torch._dynamo.mark_dynamic(arg, 0)
    # torch 2.11 offers aot_compile only where this is set (2.12 sets it by default)
    with warnings.catch_warnings(), torch._dynamo.config.patch(enable_aot_compile=True):
        # its guards read each input's .grad, which torch warns about for non-leaves
        warnings.filterwarnings("ignore", message="The .grad attribute of a Tensor that is not a leaf Tensor")
        compiled = torch.compile(step, fullgraph=True).aot_compile((args, {}))  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    compiled.save_compiled_function(str(path))  # written to a temporary file and renamed: parallel runs may race
    return compiled
