"""Teachers that run beside the student: finished runs' nets voting on each training batch as the student sees it.

A teacher file (``data/teacher.py``) holds the teachers' predictions for the clean Training faces, saved once, while the
student trains on flipped, shifted, rotated, recoloured and mixed copies of them: its targets describe a face it
never sees. ``teacher_runs`` runs the teachers on the augmented batch itself, so the targets always describe
the image trained on ("consistent teaching": Beyer et al. 2022, "Knowledge distillation: A good teacher is patient
and consistent", found fixed targets the weaker). It costs a forward pass of every teacher on every training batch
(each net's BatchNorms folded, in bf16 where the student trains in it); the targets are blended with the labels as
a teacher file's are (``blended_targets``). train() hands the teachers to the DataModule (``teach_on_batches``),
which calls them after augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from fer_lightning.data.teacher import blended_targets, check_blend
from fer_lightning.errors import ConfigError
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.folding import fold_batchnorms
from fer_lightning.precision import inference_bf16
from fer_lightning.training.run_dir import RunDir


class TeacherNets:
    """The best checkpoints of ``run_dirs``, their softmax outputs averaged (soft voting) on each batch; in bf16
    where ``precision`` (the student's) runs a trained net in it on the batch's device."""

    def __init__(self, run_dirs: Sequence[str | Path], weight: float, temperature: float,
                 precision: str = "32-true") -> None:
        check_blend(weight, temperature)
        if not run_dirs:
            raise ConfigError("teacher_runs is empty: name one or more finished train.py run dirs")
        self.weight, self.temperature, self.precision = weight, temperature, precision
        self.sources: list[Path] = []
        self.nets: list[nn.Module] = []
        self.stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        for run_dir in map(RunDir, map(Path, run_dirs)):
            checkpoint = run_dir.best_checkpoint()
            if checkpoint is None or not checkpoint.is_file():
                raise ConfigError(f"teacher_runs: {run_dir.path} is not a finished train.py run (no tested "
                                  "best checkpoint in its summary.json)")
            teacher = FaceClassifier.from_checkpoint(checkpoint)
            self.sources.append(checkpoint)
            self.nets.append(fold_batchnorms(teacher.net).requires_grad_(False))
            self.stats.append((teacher.mean, teacher.std))

    def check_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The teachers read the student's normalised batches, so each must have been trained on the same
        statistics (the same CSV, normalisation and Training cleaning)."""
        for source, (teacher_mean, teacher_std) in zip(self.sources, self.stats, strict=True):
            if teacher_mean.shape != mean.shape or not (torch.allclose(teacher_mean, mean.float(), atol=1e-4)
                                                        and torch.allclose(teacher_std, std.float(), atol=1e-4)):
                raise ConfigError(f"teacher_runs: {source} was trained with other normalisation statistics "
                                  "than this run (another CSV, data.normalization or Training cleaning)")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, 7) training targets for normalised ``images`` whose labels are class indices or distributions."""
        bf16 = inference_bf16(self.precision, images.device.type)
        if next(self.nets[0].parameters()).device != images.device:
            layout = torch.channels_last if bf16 else torch.contiguous_format
            self.nets = [net.to(images.device, memory_format=layout) for net in self.nets]
        if bf16:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            votes = torch.stack([net(images).float().softmax(1) for net in self.nets]).mean(0)
        return blended_targets(votes, labels, self.weight, self.temperature)
