"""The knobs that tell one run from another, for TensorBoard's HParams tab.

The whole config has about a hundred leaves (callback targets, paths, logger names) that never differ between
runs a user compares; the tab lists only these, beside the run's metrics.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from fer_lightning.models.cnn import ConvBlock, DenseBlock


def _class_name(node: DictConfig | None) -> str:
    return str(node._target_).rsplit(".", 1)[-1] if node is not None else "none"


def model_name(cfg: DictConfig) -> str:
    """The model config chosen on the command line (relu, leaky, vgg, resnet18 ...); outside a Hydra app the
    CNN's activation, or the net's class for nets without one."""
    net = cfg.model.net
    fallback = str(net.get("activation") or _class_name(net))
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get("model", fallback))
    return fallback


def _dropout(override: float | None, blocks: Any, default: float) -> str:
    """One rate where the config sets them all at once, else each block's, e.g. '0.35/0.25/0.25/0.35'."""
    return str(override) if override is not None else "/".join(str(b.get("dropout", default)) for b in blocks)


def _dropouts(net: DictConfig) -> dict[str, str]:
    """The CNN's conv and dense rates; a net without those blocks (the ResNet) has one rate, before its head."""
    if "conv_blocks" not in net:
        return {"conv_dropout": "none", "dense_dropout": str(net.get("dropout", "none"))}
    return {
        "conv_dropout": _dropout(net.get("conv_dropout"), net.conv_blocks, ConvBlock.dropout),
        "dense_dropout": _dropout(net.get("dense_dropout"), net.dense_blocks, DenseBlock.dropout),
    }


def _augmentation(data: DictConfig) -> str:
    augment = data.get("batch_augment")
    if augment is not None:
        return (f"batched: hflip {augment.hflip}, affine {augment.affine}, color {augment.color}, "
                f"erase {augment.get('erase', 0.0)}")
    return "albumentations, per face" if data.get("train_transform") is not None else "none"


def run_knobs(cfg: DictConfig, precision: str) -> dict[str, Any]:
    """Model, first conv's start, optimizer, peak LR, weight decay, SAM's radius, dropout, augmentation, batch,
    epochs (and the minutes they must fit), seed and precision."""
    model = cfg.model
    scheduler = model.get("scheduler")
    return {
        "model": model_name(cfg),
        "whiten_first_conv": bool(cfg.whiten_first_conv),
        "optimizer": _class_name(model.optimizer),
        "scheduler": _class_name(scheduler),
        "peak_lr": float(scheduler.max_lr if scheduler is not None and "max_lr" in scheduler else model.optimizer.lr),
        "weight_decay": float(model.optimizer.get("weight_decay", 0.0)),
        "l2_in_loss": bool(model.keras_l2),
        "label_smoothing": float(model.label_smoothing),
        "sam_rho": float(cfg.sam_rho or 0.0),
        **_dropouts(model.net),
        "augmentation": _augmentation(cfg.data),
        "batch_size": int(cfg.data.batch_size),
        "max_epochs": int(cfg.trainer.max_epochs),
        "fit_minutes": float(cfg.fit_minutes or 0.0),
        "seed": int(cfg.seed),
        "precision": precision,
    }
