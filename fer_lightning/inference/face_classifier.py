"""A trained network from one checkpoint file: rebuilt, normalised exactly as in training, ready to predict.

The checkpoint carries the net's config (``hyper_parameters.net_config``) and the DataModule's normalisation
statistics, so nothing else can drift from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from scipy.special import softmax
from torch import nn

from fer_lightning.fer2013 import NUM_CLASSES
from fer_lightning.inference.runtime_names import GRAPH_RUNTIMES, RUNTIMES, checked_runtime
from fer_lightning.inference.runtimes import GraphRunner, graph_runner, onnx_bytes
from fer_lightning.inference.tta import averaged_logits, view_count, views
from fer_lightning.models.checkpoints import DATAMODULE_KEY, CheckpointError, net_config, read_checkpoint


@dataclass
class FaceClassifier:
    """A network plus the normalisation it was trained with; takes uint8 48x48 faces, returns logits.

    ``bf16`` runs the network under bf16 autocast in channels_last, the fast path on GPUs and on CPUs with bf16
    kernels; logits stay float32 either way. Faces go to whichever device the network is on. ``tta`` names the
    test-time augmentation (``inference.tta``) that ``logits`` averages over; ``net_logits`` is one plain pass.
    ``runtime`` torch_compile compiles the net with inductor, its weights frozen in as constants (folded and laid
    out for oneDNN once); onnxruntime and openvino export the net to ONNX on first use and run that graph on the
    CPU (``inference.runtimes``), in bf16 too where ``bf16`` is set and the runtime offers it, or run
    ``int8_graph``, fer-export's checked int8 copy of the net, instead. ``predict_proba`` divides the logits by
    ``temperature`` first (``inference.calibration``; 1: the net's own probabilities).
    """

    net: nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    source: Path
    bf16: bool = False
    tta: str = "none"
    runtime: str = "torch"
    int8_graph: Path | None = None
    temperature: float = 1.0
    _graph: GraphRunner | None = field(default=None, init=False, repr=False)
    _forward: Callable[[torch.Tensor], torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        view_count(self.tta)  # an unknown TTA fails now, not mid-way
        checked_runtime(self.runtime, allowed=RUNTIMES)  # auto is the caller's to resolve (``chosen_runtime``)
        if self.int8_graph is not None:
            checked_runtime(self.runtime, "runtime for an int8 graph", GRAPH_RUNTIMES)
        self._forward = torch.compile(self.net, options={"freezing": True}) if self.runtime == "torch_compile" \
            else self.net

    @classmethod
    def from_checkpoint(cls, path: str | Path, bf16: bool = False, tta: str = "none", runtime: str = "torch",
                        int8_graph: Path | None = None, temperature: float = 1.0) -> FaceClassifier:
        path = Path(path)
        checkpoint = read_checkpoint(path)
        net: nn.Module = instantiate(net_config(path, checkpoint), _convert_="all")
        weights = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
        try:
            net.load_state_dict(weights)
        except RuntimeError as err:
            first_line = str(err).splitlines()[0]
            raise CheckpointError(f"{path}: weights do not fit the configured network ({first_line})") from None
        stats = checkpoint[DATAMODULE_KEY]
        if bf16:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stubs
        return cls(net.eval(), stats["mean"].float(), stats["std"].float(), path, bf16, tta, runtime, int8_graph,
                   temperature)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, 7) float32 logits, averaged over the TTA views. The views go through the
        net together: for one face and its mirror, one call took fer-predict 0.9 ms where a call per view took
        1.2-1.3 (docs/results.md, "A student of the three 100-epoch nets")."""
        if self.tta == "none":
            return self.net_logits(images)
        every_view = views(images, self.tta)
        per_view = self.net_logits(np.concatenate(every_view))
        return averaged_logits(per_view.reshape(len(every_view), len(images), NUM_CLASSES))

    @torch.inference_mode()
    def net_logits(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, 7) float32 logits of one pass, no TTA."""
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected (N, 48, 48) uint8 faces, got {images.dtype} array of shape {images.shape}")
        if self.runtime in GRAPH_RUNTIMES:
            return self._graph_logits(images, batch_size)
        device = next(self.net.parameters()).device
        mean, std = self.mean.to(device), self.std.to(device)
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = (torch.from_numpy(images[start:start + batch_size]).to(device).unsqueeze(1).float() - mean) / std
            if self.bf16:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                chunks.append(self._forward(batch).float().cpu())
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def _graph_logits(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        if self._graph is None:
            rows_per_face = view_count(self.tta)
            self._graph = graph_runner(self.runtime, self.int8_graph, False, rows_per_face) if self.int8_graph else \
                graph_runner(self.runtime, onnx_bytes(self.net, self.mean, self.std), self.bf16, rows_per_face)
        chunks = [self._graph(images[start:start + batch_size, None].astype(np.float32))
                  for start in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return softmax(self.logits(images) / self.temperature, axis=1)
