"""Reading train.py's checkpoint files, with an error a user can act on. torch alone: fer-predict reads checkpoints
and has no use for Lightning (training writes them through ``training/checkpoint_io.py``). torch is imported where
a file is read, so commands can check that a checkpoint is there before they import it (fer_lightning.cli)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fer_lightning.errors import FerError

DATAMODULE_KEY = "FerDataModule"  # Lightning stores a DataModule's state_dict under its class name
# Where the net's class lived when earlier checkpoints recorded it in their net_config.
MOVED_TARGETS = {"fer_lightning.model.FerCNN": "fer_lightning.models.cnn.FerCNN"}


class CheckpointError(FerError, ValueError):
    """A checkpoint that is missing, unreadable or not written by fer-lightning's train.py."""


def existing_checkpoint(path: str | os.PathLike) -> Path:
    """``path`` once it is a file, or CheckpointError saying it is not there."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a train.py checkpoint on the CPU, or raise CheckpointError naming the file and what is wrong."""
    import torch

    path = existing_checkpoint(path)
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
