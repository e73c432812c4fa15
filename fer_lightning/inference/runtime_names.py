"""The inference runtimes by name, importing none of them: fer-predict checks ``runtime=`` before torch loads
(``predict.request``), and ``inference.runtimes`` picks among them."""

from __future__ import annotations

from collections.abc import Sequence

from fer_lightning.errors import ConfigError

GRAPH_RUNTIMES = ("onnxruntime", "openvino")  # they run an exported ONNX graph, float32 or int8
RUNTIMES = ("torch", "torch_compile", *GRAPH_RUNTIMES)
AUTO = "auto"  # fer-predict's default: the graph runtime ``inference.runtimes.chosen_runtime`` picks
ONNX_FILE_RUNTIMES = (AUTO, *GRAPH_RUNTIMES)  # a fer-export file holds a graph, no net for torch to run


def checked_runtime(runtime: str, key: str = "runtime", allowed: Sequence[str] = (AUTO, *RUNTIMES)) -> str:
    """``runtime`` where ``allowed`` names it, else ConfigError naming the setting ``key`` and what it may be."""
    if runtime not in allowed:
        either = f"{AUTO} or one of" if AUTO in allowed else "one of"
        named = ", ".join(name for name in allowed if name != AUTO)
        raise ConfigError(f"{key} must be {either} {named}, got {runtime!r}")
    return runtime
