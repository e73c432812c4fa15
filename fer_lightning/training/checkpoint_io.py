"""How training writes checkpoints: so that a kill never leaves half of one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a hidden file beside its target, syncs it, then renames it into place.

    A rename within one directory is atomic, so ``last.ckpt`` is always either the old or the new checkpoint.
    Lightning's own save stages the file in the system temp dir; where that is another filesystem, its final
    move is a copy, and a kill during the copy leaves a torn checkpoint. Remote URLs go to Lightning's save.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, str(path), storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
