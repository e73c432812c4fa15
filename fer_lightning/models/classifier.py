"""LightningModule around FerCNN: label-smoothed (optionally class-weighted) loss plus Keras-style L2, metrics."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall

from fer_lightning.fer2013 import CLASS_NAMES, NUM_CLASSES
from fer_lightning.models.sam import SAM

MIN_SCHEDULE_STEPS = 100


# Every metric here has validate_args=False: the check counts the distinct labels at each update, a host sync
# per step on a GPU, and the labels were already checked against the classes when the CSV was read.
def _accuracy(num_classes: int) -> MulticlassAccuracy:
    return MulticlassAccuracy(num_classes, average="micro", validate_args=False)


def _metrics(num_classes: int) -> MetricCollection:
    return MetricCollection({
        "acc": _accuracy(num_classes),
        "f1_macro": MulticlassF1Score(num_classes, average="macro", validate_args=False),
    })


class EmotionClassifier(L.LightningModule):
    """Trains any image->logits network; optimizer and scheduler are partials from the config.

    ``keras_l2`` adds the net's per-layer L2 to the loss as Keras' kernel_regularizer does (the study's recipe);
    switch it off when the optimizer brings its own decoupled weight decay (AdamW). ``sam_rho`` wraps the optimizer
    in sharpness-aware minimisation with that radius (``fer_lightning/models/sam.py``: two gradients a step).
    ``net_config`` is the net's ``_target_`` node, kept in the hyperparameters so that a checkpoint alone can
    rebuild the network (see ``fer_lightning.inference.face_classifier``).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str = "val/loss",
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        keras_l2: bool = True,
        channels_last: bool = False,
        sam_rho: float | None = None,
        net_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Only plain values go into the checkpoint, so it loads with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net  # type: ignore[call-overload]
        num_classes = NUM_CLASSES
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        # Training tracks accuracy alone: F1 counts per class with bincount, which on a GPU waits for the host.
        self.train_metrics = MetricCollection({"acc": _accuracy(num_classes)}, prefix="train/")
        self.val_metrics = _metrics(num_classes).clone(prefix="val/")
        self.test_metrics = _metrics(num_classes).clone(prefix="test/")
        self.test_recall = MulticlassRecall(num_classes, average=None, validate_args=False)
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best epoch

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams["channels_last"]:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    def _l2_penalty(self) -> torch.Tensor | float:
        """The net's Keras-style L2 term, or 0.0 (no tensor work on the hot path) when off or not offered."""
        penalty = getattr(self.net, "l2_penalty", None)
        return penalty() if self.hparams["keras_l2"] and penalty is not None else 0.0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch  # class indices, or (B, 7) distributions (mixup, CutMix, a teacher's)
        logits = self(images)
        loss = self.criterion(logits.float(), targets) + self._l2_penalty()
        self.train_metrics.update(logits, targets.argmax(1) if targets.dim() == 2 else targets)
        # sync_dist: under DDP each process's mean loss is averaged across them (a no-op on one device).
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection, stage: str) -> None:
        images, labels = batch
        logits = self(images).float()
        metrics.update(logits, labels)
        self.log(f"{stage}/loss", self.criterion(logits, labels), on_epoch=True, prog_bar=stage == "val",
                 sync_dist=True)
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")
        if stage == "test":
            self.test_recall.update(logits, labels)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        for name, recall in zip(CLASS_NAMES, self.test_recall.compute(), strict=True):
            self.log(f"test/recall_{name}", recall)
        self.test_recall.reset()

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(params=self.parameters())
        if self.hparams["sam_rho"]:
            optimizer = SAM(optimizer, self.hparams["sam_rho"], kept=list(self.net.buffers()))
        if self.make_scheduler is None:
            return optimizer
        # OneCycleLR divides by zero on a handful of steps (debug runs); a floor keeps those working.
        total_steps = max(int(self.trainer.estimated_stepping_batches), MIN_SCHEDULE_STEPS)
        return {"optimizer": optimizer, "lr_scheduler": {
            "scheduler": self._scheduler(optimizer, total_steps), "interval": self.hparams["scheduler_interval"],
            "monitor": self.hparams["scheduler_monitor"],
        }}

    def _scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
        assert self.make_scheduler is not None, "called only where the config names a scheduler"
        if self.schedule_has_length:
            return self.make_scheduler(optimizer=optimizer, total_steps=total_steps)
        return self.make_scheduler(optimizer=optimizer)

    @property
    def schedule_has_length(self) -> bool:
        """Whether the scheduler is sized by the run's length (one-cycle style: it takes ``total_steps``)."""
        target = getattr(self.make_scheduler, "func", self.make_scheduler)
        return target is not None and "total_steps" in inspect.signature(target).parameters

    def resize_schedule(self, total_steps: int) -> None:
        """Size the running one-cycle-style schedule for ``total_steps`` in all, from the step it has reached, as
        if it had been built for that length (a time budget's new plan: ``training/time_budget.py``)."""
        config = self.trainer.lr_scheduler_configs[0]
        reached = config.scheduler.last_epoch
        scheduler = self._scheduler(config.scheduler.optimizer, max(total_steps, reached + 1, MIN_SCHEDULE_STEPS))
        scheduler.last_epoch = reached - 1
        scheduler.step()  # sets the learning rate (and momentum) of step `reached` under the new length
        config.scheduler = scheduler
