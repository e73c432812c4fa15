"""Checkpoint files: written so that a kill never leaves half of one, read with an error a user can act on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fer_lightning.errors import FerError

DATAMODULE_KEY = "FerDataModule"  # Lightning stores a DataModule's state_dict under its class name
# Where the net's class lived when earlier checkpoints recorded it in their net_config.
MOVED_TARGETS = {"fer_lightning.model.FerCNN": "fer_lightning.models.cnn.FerCNN"}


class CheckpointError(FerError, ValueError):
    """A checkpoint that is missing, unreadable or not written by fer-lightning's train.py."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a train.py checkpoint on the CPU, or raise CheckpointError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    missing = [key for key in ("state_dict", DATAMODULE_KEY) if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: lacks {', '.join(missing)}; expected a checkpoint written by train.py")
    return checkpoint


def net_config(path: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The network's ``_target_`` node that train.py stored in the checkpoint, with its class at today's path."""
    config = checkpoint.get("hyper_parameters", {}).get("net_config")
    if not config:
        raise CheckpointError(f"{path}: holds no net_config, so the network it belongs to is unknown; expected a "
                              "checkpoint written by train.py")
    return {**config, "_target_": MOVED_TARGETS.get(config["_target_"], config["_target_"])}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a hidden file beside its target, syncs it, then renames it into place.

    A rename within one directory is atomic, so ``last.ckpt`` is always either the old or the new checkpoint.
    Lightning's own save stages the file in the system temp dir; where that is another filesystem, its final
    move is a copy, and a kill during the copy leaves a torn checkpoint. Remote URLs go to Lightning's save.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
