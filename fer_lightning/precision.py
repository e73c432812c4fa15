"""Pick the fastest safe precision for the machine we are on instead of assuming one."""

from __future__ import annotations

import logging

import torch

from fer_lightning.errors import check_switch

log = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """True where the CPU does bf16 arithmetic itself (AVX-512 bf16 or AMX) for oneDNN's bf16 kernels.

    oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also says yes on plain AVX-512, where its
    kernels emulate bf16: there the study net trained at a third of float32's speed (an Intel Xeon, family 6 model
    207, whose virtual CPU shows neither; docs/results.md).
    """
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:  # a torch without these checks
        return False
    return bool(torch.backends.mkldnn.is_available() and native)


def choose_precision(accelerator: str = "auto") -> str:
    """The Lightning precision for the accelerator the Trainer will use."""
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_supports_bf16() else "32-true"


def channels_last_layout(setting: bool | str) -> bool:
    """``channels_last: auto`` is on everywhere: oneDNN's convolutions ran faster in it in bf16 (Xeon with AMX)
    and in float32 alike (AVX2 EPYC: 1.4x the training images per second; docs/results.md)."""
    if setting == "auto":
        return True
    check_switch("channels_last", setting, also="auto")
    return bool(setting)


def resolve_precision(precision: str | int, channels_last: bool | str, accelerator: str) -> tuple[str, bool]:
    """Fill in 'auto' for either setting; explicit choices are kept as given."""
    chosen = choose_precision(accelerator) if precision == "auto" else str(precision)
    layout = channels_last_layout(channels_last)
    log.info("Precision %s%s, memory format %s (bf16 kernels on this CPU: %s)", chosen,
             " (auto)" if precision == "auto" else "", "channels_last" if layout else "contiguous",
             cpu_supports_bf16())
    return chosen, layout


def inference_bf16(precision: str, device: str) -> bool:
    """The one rule for running a trained net in bf16: asked for (a bf16 precision, or auto) and fast on
    ``device`` ('cpu', 'cuda', ...). Training, fer-predict, fer-export and fer-bench all ask here."""
    if precision == "auto":
        return choose_precision(device).startswith("bf16")
    return precision.startswith("bf16") and (device != "cpu" or cpu_supports_bf16())
