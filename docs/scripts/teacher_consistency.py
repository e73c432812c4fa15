"""How well a teacher file's fixed targets describe the augmented faces a student actually trains on.

    python docs/scripts/teacher_consistency.py <teacher_train.npz> <run dir> [<run dir> ...]

The file (``fer-stack teacher=true``) holds the runs' soft vote on each clean Training face, each run with its TTA.
Here the same runs vote again, one pass each, on the clean faces and on one draw of ``best``'s batch augmentation
(data=fer2013_batched: flips, shifts, scaling, rotation, brightness and contrast), as ``teacher_runs`` does
while a student trains. Printed for each: how often its top class is the file's and the label, and the mean total
variation distance of its distribution from the file's (0: the same, 1: disjoint).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.progress import track

from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.training.teacher_nets import TeacherNets

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def votes(teachers: TeacherNets, dm: FerDataModule, faces: torch.Tensor, augment: BatchAugment | None,
          generator: torch.Generator) -> torch.Tensor:
    """The teachers' soft vote (weight 1, temperature 1) on ``faces``, through ``augment`` first where given, 512 at
    a time."""
    chunks = []
    for start in track(range(0, len(faces), 512), description="clean" if augment is None else "augmented"):
        batch = faces[start:start + 512].float()
        batch = batch if augment is None else augment(batch, generator)
        chunks.append(teachers(dm.normalize(batch), torch.zeros(len(batch), dtype=torch.long)))
    return torch.cat(chunks)


def main(teacher_file: Path, run_dirs: list[str]) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", ["data=fer2013_batched", f"data.teacher={teacher_file}"])
    dm: FerDataModule = instantiate(cfg.data, teacher_weight=1.0, teacher_temperature=1.0)
    dm.setup()
    dataset = dm.dataset("train")
    faces, fixed = torch.from_numpy(dataset.images).unsqueeze(1), torch.from_numpy(dataset.labels)
    labels = torch.from_numpy(dm.data.split("Training")[1])
    teachers = TeacherNets(run_dirs, dm.mean, dm.std, weight=1.0, temperature=1.0, precision="auto")
    generator = torch.Generator().manual_seed(0)
    file_right = (fixed.argmax(1) == labels).float().mean()
    print(f"{len(faces)} Training faces; the file's top class is the label on {file_right:.1%}")
    for name, augment in (("clean faces, one pass each", None), ("augmented faces, one pass each", dm.batch_augment)):
        vote = votes(teachers, dm, faces, augment, generator)
        same = (vote.argmax(1) == fixed.argmax(1)).float().mean()
        right = (vote.argmax(1) == labels).float().mean()
        distance = 0.5 * (vote - fixed).abs().sum(1).mean()
        print(f"{name}: top class the file's {same:.1%}, the label {right:.1%}; total variation from the file "
              f"{distance:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    torch.set_grad_enabled(False)
    main(Path(sys.argv[1]), sys.argv[2:])
