"""What fer-predict is asked for, checked without torch: exactly one model, there on disk, and inputs that hold
at least one file. fer-predict checks these before the inference stack's imports (fer_lightning.cli), so a
mistyped path is one line in about a second; ``predict()`` reads them through the same functions."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.errors import ConfigError, FerError, check_number, check_switch, check_whole_number
from fer_lightning.inference.runtime_names import ONNX_FILE_RUNTIMES, checked_runtime
from fer_lightning.predict.media import expand_inputs
from fer_lightning.training.run_dir import RunDir

MODEL_KINDS = {"ckpt": "checkpoint file or run dir", "onnx": "ONNX file", "stack": "stack run dir or meta-model file"}
PRECISIONS = ("auto", "32-true", "bf16-mixed")


def named_model(cfg: DictConfig) -> tuple[str, Path]:
    """The one model named by ckpt=, onnx= or stack=, as (key, path), once it exists (for ckpt=, a run dir's
    checkpoint: ``RunDir.checkpoint_named``); FerError for an ``int8`` or ``temperature`` that is not a setting."""
    named = {key: cfg[key] for key in MODEL_KINDS if cfg[key]}
    if len(named) != 1:
        raise FerError("name exactly one model: ckpt=<train.py checkpoint or run dir>, onnx=<fer-export file> or "
                       f"stack=<stack.py run dir>; got {', '.join(named) or 'none'}")
    if cfg.int8 not in ("auto", False):
        raise FerError(f"int8 must be auto (fer-export's checked int8 copy where there is one) or false, "
                       f"got {cfg.int8!r}")
    (kind, path), = named.items()
    if cfg.temperature != "auto":
        check_number("temperature", cfg.temperature, above=0,
                     why="what the logits are divided by; or auto, the one fitted on the run's PublicTest")
    if not Path(path).exists():
        raise FerError(f"{path}: no such {MODEL_KINDS[kind]}")
    return kind, RunDir.checkpoint_named(path) if kind == "ckpt" else Path(path)


def input_files(inputs: str | list[str]) -> tuple[list[Path], list[str]]:
    """``expand_inputs``'s files and problems, or FerError with every problem when no input holds a file."""
    files, problems = expand_inputs(inputs)
    if not files:
        raise FerError(f"nothing to predict: {'; '.join(problems)}")
    return files, problems


def check_request(cfg: DictConfig) -> None:
    """``check_settings``, and FerError for inputs that hold no file."""
    check_settings(cfg)
    input_files(cfg.inputs)


def check_settings(cfg: DictConfig) -> None:
    """FerError for a model that is not there, a frame step or batch below 1, a wait that is not positive, a count
    of faces to show below 0, a margin that leaves a face's square no side, an eye-levelling angle below 0, a
    precision or runtime, a video setting or a switch that cannot work, before anything is loaded."""
    check_whole_number("every_n_frames", cfg.every_n_frames)
    check_whole_number("batch_size", cfg.batch_size)
    check_number("save_every_s", cfg.save_every_s, above=0, why="seconds a picture may wait for its batch")
    check_whole_number("show", cfg.show, of="faces", least=0)
    check_number("margin", cfg.margin, above=-0.5, why="a share of the face's side added on each side")
    if cfg.level_eyes_above is not None:
        check_number("level_eyes_above", cfg.level_eyes_above, least=0, why="degrees; or null for never")
    for switch in ("annotate", "explain", "overview", "progress"):
        check_switch(switch, cfg[switch])
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.onnx:
        checked_runtime(cfg.runtime, "runtime for an ONNX file", ONNX_FILE_RUNTIMES)
    else:
        checked_runtime(cfg.runtime)
    check_number("video.tracking.min_overlap", cfg.video.tracking.min_overlap, least=0, most=1,
                 why="intersection over union")
    check_whole_number("video.tracking.max_missed", cfg.video.tracking.max_missed, "sampled frames", least=0)
    check_whole_number("video.smooth_frames", cfg.video.smooth_frames, "sampled frames")
    check_whole_number("video.zoom_every", cfg.video.zoom_every, "sampled frames")
    check_switch("video.timelines", cfg.video.timelines)
    named_model(cfg)
