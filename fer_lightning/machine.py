"""Which machine a figure was measured on: speeds are only comparable on one CPU, and the cloud machines this
project runs on change CPU between sessions while naming most of them alike ("AMD EPYC")."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor with its family and model numbers (which tell an EPYC of one generation from the next where
    the name does not), its core count and its bf16 units: ``AMD EPYC (family 25 model 17), 2 cores, AVX-512
    bf16``. Where there is no ``cpuinfo`` (macOS, Windows), Python's name for the processor."""
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']} model {fields['model']})"
    flags = set(fields.get("flags", "").split())
    units = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 bf16")) if flag in flags]
    return f"{model}, {os.cpu_count()} cores" + "".join(f", {unit}" for unit in units)
