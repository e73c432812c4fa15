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
from fer_lightning.errors import ConfigError, as_list, check_distinct
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.folding import fold_batchnorms
from fer_lightning.precision import inference_bf16
from fer_lightning.training.run_dir import RunDir


class TeacherNets:
    """The best checkpoints of ``run_dirs``, their softmax outputs averaged (soft voting) on each batch; in bf16
    where ``precision`` (the student's) runs a trained net in it on the batch's device.

    The teachers read the student's normalised batches, so each must have been trained on the student's ``mean``
    and ``std`` (the same CSV, normalisation and Training cleaning); one that was not is refused here.
    """

    def __init__(self, run_dirs: str | Path | Sequence[str | Path], mean: torch.Tensor, std: torch.Tensor,
                 weight: float, temperature: float, precision: str = "32-true") -> None:
        check_blend(weight, temperature)
        run_dirs = as_list("teacher_runs", run_dirs, "run dirs")
        if not run_dirs:
            raise ConfigError("teacher_runs is empty: name one or more finished train.py run dirs")
        check_distinct("teacher_runs", list(map(Path, run_dirs)))
        self.weight, self.temperature, self.precision = weight, temperature, precision
        self.nets: list[nn.Module] = []
        for run_dir in map(RunDir, map(Path, run_dirs)):
            checkpoint = run_dir.best_checkpoint()
            if checkpoint is None or not checkpoint.is_file():
                raise ConfigError(f"teacher_runs: {run_dir.path} is not a finished train.py run (no tested "
                                  "best checkpoint in its summary.json)")
            teacher = FaceClassifier.from_checkpoint(checkpoint)
            if teacher.mean.shape != mean.shape or not (torch.allclose(teacher.mean, mean.float(), atol=1e-4)
                                                        and torch.allclose(teacher.std, std.float(), atol=1e-4)):
                raise ConfigError(f"teacher_runs: {checkpoint} was trained with other normalisation statistics "
                                  "than this run (another CSV, data.normalization or Training cleaning)")
            self.nets.append(fold_batchnorms(teacher.net).requires_grad_(False))
        self._device: torch.device | None = None  # where the nets are, placed by the first batch
        self._bf16 = False

    def _place(self, device: torch.device) -> None:
        """The nets onto the batches' device, in the layout and precision they will run in there (once)."""
        self._bf16 = inference_bf16(self.precision, device.type)
        layout = torch.channels_last if self._bf16 else torch.contiguous_format
        self.nets = [net.to(device, memory_format=layout) for net in self.nets]  # type: ignore[call-overload]
        self._device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, 7) training targets for normalised ``images`` whose labels are class indices or distributions."""
        if images.device != self._device:
            self._place(images.device)
        if self._bf16:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=self._bf16):
            votes = torch.stack([net(images).float().softmax(1) for net in self.nets]).mean(0)
        return blended_targets(votes, labels, self.weight, self.temperature)
