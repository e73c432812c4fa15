"""A training step off the CPU never makes the host wait for the device.

A GPU runs ahead of Python. Reading a value back (a metric's label check, a NaN check, a bincount) or a blocking
copy onto the device makes the host wait and leaves the GPU idle between steps. These tests use PyTorch's meta
device, which has shapes but no values: an operation that needs a value fails there, and copies onto it are
counted.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import compose_train
from hydra.utils import instantiate
from torch.utils._python_dispatch import TorchDispatchMode

from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.training.callbacks import StopOnNonFiniteLoss

COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)


class CopiesOffTheCpu(TorchDispatchMode):
    """Counts tensor copies from the CPU to another device."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        source = args[1] if func is torch.ops.aten.copy_.default else args[0]
        if func in COPIES and source.device.type == "cpu" and out.device.type != "cpu":
            self.count += 1
        return out


def faces(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8, device="meta")


def test_augmentation_sends_its_random_draws_in_one_copy() -> None:
    images = faces(8).float()
    with CopiesOffTheCpu() as copies:
        out = BatchAugment(erase=0.5)(images, torch.Generator().manual_seed(0))
    assert out.device.type == "meta" and out.shape == images.shape
    assert copies.count == 1


def test_normalisation_statistics_reach_the_device_once(fer_csv: Path) -> None:
    dm = FerDataModule(str(fer_csv), batch_size=16)
    dm.setup()
    images = faces(8)
    with CopiesOffTheCpu() as copies:
        dm.normalize(images)
        first = copies.count
        dm.normalize(images)
    assert first == 2 and copies.count == 2  # mean and std, then nothing for the next batch
    dm.load_state_dict(dm.state_dict() | {"mean": dm.mean + 1})
    with CopiesOffTheCpu() as copies:
        dm.normalize(images)
    assert copies.count == 2  # new statistics are copied again


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer here: logging is skipped
@pytest.mark.parametrize("overrides", [[], ["experiment=sota"]], ids=["relu", "sota_vgg"])
def test_a_training_step_reads_nothing_back_from_the_device(overrides: list[str], fer_csv: Path) -> None:
    cfg = compose_train([f"data.csv_path={fer_csv}", "data.cache_dir=null", *overrides])
    dm, model = instantiate(cfg.data), instantiate(cfg.model).to("meta")
    dm.setup()
    dm.trainer = SimpleNamespace(training=True)
    trainer = SimpleNamespace(global_step=0, current_epoch=0)
    with CopiesOffTheCpu() as copies:
        batch = dm.on_after_batch_transfer((faces(16), torch.zeros(16, dtype=torch.long, device="meta")), 0)
        loss = model.training_step(batch, 0)
        loss.backward()
        StopOnNonFiniteLoss().on_train_batch_end(trainer, model, loss, batch, 0)  # deferred: not read off the CPU
    assert loss.device.type == "meta" and loss.dim() == 0
    assert copies.count == 2 + (dm.batch_augment is not None)  # mean and std (once a run), augmentation draws
