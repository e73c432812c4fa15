"""The inference runtimes by name, importing none of them: fer-predict checks ``runtime=`` before torch loads
(``predict.request``), and ``inference.runtimes`` picks among them."""

from __future__ import annotations

from fer_lightning.errors import ConfigError

GRAPH_RUNTIMES = ("onnxruntime", "openvino")  # they run an exported ONNX graph, float32 or int8
RUNTIMES = ("torch", "torch_compile", *GRAPH_RUNTIMES)
AUTO = "auto"  # fer-predict's default: the graph runtime ``inference.runtimes.chosen_runtime`` picks


def checked_runtime(runtime: str, key: str = "runtime") -> str:
    """``runtime`` where it is auto or one of ``RUNTIMES``, else ConfigError naming the setting ``key``."""
    if runtime != AUTO and runtime not in RUNTIMES:
        raise ConfigError(f"{key} must be {AUTO} or one of {', '.join(RUNTIMES)}, got {runtime!r}")
    return runtime
