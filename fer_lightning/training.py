"""``train(cfg)``: the one function that train.py, tuning and the tests all call.

Fit on Training with PublicTest as validation, then evaluate the best checkpoint once on PrivateTest (with the
test-time augmentation PublicTest prefers) and write the run's report, logits for stacking, and TensorBoard
figures.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf

from fer_lightning.datamodule import FerDataModule
from fer_lightning.errors import FerError
from fer_lightning.inference import FaceClassifier
from fer_lightning.precision import cpu_supports_bf16, resolve_precision
from fer_lightning.reports import curves_figure, save_logits, write_report
from fer_lightning.rundir import check_output_dir, resolve_checkpoint
from fer_lightning.tta import choose_tta

log = logging.getLogger(__name__)


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named _target_ nodes; a node set to null is switched off."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """Path of the best checkpoint, or None when none was written (fast_dev_run) and current weights count."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


def _test_and_report(trainer: L.Trainer, model: L.LightningModule, datamodule: FerDataModule, run_dir: Path,
                     tta_candidates: Sequence[str], bf16: bool) -> tuple[dict[str, Any], Figure]:
    """The one PrivateTest pass: test the best checkpoint, pick TTA on PublicTest, save logits, write the report.

    ``trainer.test`` logs single-pass test metrics; the report and the saved logits use the TTA that scored best
    on PublicTest, so stacking and fer-predict see the same predictions the report describes.
    """
    best = _best_checkpoint(trainer)
    log.info("Testing %s on PrivateTest", best or "the final weights")
    test_results = trainer.test(model, datamodule=datamodule, ckpt_path=best)[0]  # leaves the tested weights in
    net = model.net.to(trainer.strategy.root_device).eval()  # Lightning's teardown moved it to the CPU
    classifier = FaceClassifier(net, datamodule.mean, datamodule.std, Path(best or run_dir), bf16)
    val_images, val_labels = datamodule.data.split("PublicTest")
    test_images, test_labels = datamodule.data.split("PrivateTest")
    classifier.tta, tta_scores, val_logits = choose_tta(classifier.net_logits, val_images, val_labels,
                                                        tta_candidates)
    log.info("TTA on PublicTest: %s; using %s",
             ", ".join(f"{name} {acc:.4f}" for name, acc in tta_scores.items()), classifier.tta)
    test_logits = classifier.logits(test_images)
    save_logits(run_dir / "logits_val.npz", val_logits, val_labels)
    save_logits(run_dir / "logits_test.npz", test_logits, test_labels)
    report, confusion = write_report(run_dir, "PrivateTest", test_logits, test_labels)
    return {
        "val/acc": float(np.mean(val_logits.argmax(1) == val_labels)),
        "test/acc": report["accuracy"],
        "test/f1_macro": report["macro"]["f1"],
        "test/loss": float(test_results["test/loss"]),
        "test/acc_single_pass": float(test_results["test/acc"]),
        "tta": classifier.tta,
        "tta_val_acc": tta_scores,
        "best_checkpoint": best,
    }, confusion


def train(cfg: DictConfig, extra_callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train, test the best checkpoint on PrivateTest (unless ``cfg.test`` is false), write reports.

    Returns the headline metrics. ``extra_callbacks`` are objects no config can describe, such as a tuning
    trial's pruning callback.
    """
    start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.output_dir)
    if cfg.get("resume") and Path(cfg.resume).resolve() != run_dir.resolve():
        raise FerError(f"resume={cfg.resume} is expanded by train.py into that run's dir and overrides; "
                       f"here the output dir is {run_dir}. Use ckpt_path=<file> when calling train() directly")
    check_output_dir(run_dir, cfg.get("min_free_disk_mb", 0))
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), run_dir)
    if ckpt_path:
        log.info("Resuming from %s", ckpt_path)
    precision, channels_last = resolve_precision(cfg.trainer.precision, cfg.channels_last, cfg.trainer.accelerator)

    if cfg.class_weights not in (None, "balanced"):
        raise ValueError(f"class_weights must be null or 'balanced', got {cfg.class_weights!r}")
    datamodule: FerDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    class_weights = datamodule.balanced_class_weights() if cfg.class_weights == "balanced" else None
    model = instantiate(cfg.model, class_weights=class_weights, channels_last=channels_last, _convert_="all")
    # Set after instantiate, which would otherwise build this _target_ node into a second network.
    model.hparams.net_config = OmegaConf.to_container(cfg.model.net, resolve=True)
    if cfg.get("compile", False):
        model.net.compile()  # in place: state_dict keys stay plain, so checkpoints load without torch.compile

    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = [*_instantiate_all(cfg.get("callbacks")), *extra_callbacks]
    trainer: L.Trainer = instantiate(cfg.trainer, precision=precision, callbacks=callbacks, logger=loggers or False)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    fit_seconds = time.perf_counter() - start
    val_acc_best = trainer.callback_metrics.get("val/acc_best")  # read before test/predict replace the metrics

    summary: dict[str, Any] = {
        "val/acc_best": float(val_acc_best) if val_acc_best is not None else float("nan"),
        "epochs": trainer.current_epoch,
        "fit_seconds": round(fit_seconds, 1),
        "precision": precision,
        "device": str(trainer.strategy.root_device),
    }
    figures: dict[str, Figure] = {}
    if cfg.get("test", True):
        on_cpu = trainer.strategy.root_device.type == "cpu"  # TTA and logits run where the model trained
        bf16 = precision.startswith("bf16") and (not on_cpu or cpu_supports_bf16())
        results, figures["test/confusion_matrix"] = _test_and_report(trainer, model, datamodule, run_dir,
                                                                     cfg.get("tta", ["none"]), bf16)
        summary |= results
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            for tag, figure in figures.items():
                logger.experiment.add_figure(tag, figure, global_step=trainer.global_step)
            hp = {f"hp/{k.replace('/', '_')}": v for k, v in summary.items() if isinstance(v, float)}
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True), metrics=hp)
            logger.experiment.flush()  # written after fit's finalize: on disk now, not at interpreter exit
        if isinstance(logger, CSVLogger):
            logger.save()
            metrics_csv = Path(logger.log_dir) / "metrics.csv"
            if metrics_csv.is_file():
                curves = curves_figure(metrics_csv)
                curves.savefig(run_dir / "curves.png", dpi=110)
                plt.close(curves)
    for figure in figures.values():
        plt.close(figure)
    if "test/acc" in summary:
        log.info("PrivateTest accuracy %.4f, macro F1 %.4f (TTA %s) after %d epochs in %.0f s; run dir %s",
                 summary["test/acc"], summary["test/f1_macro"], summary["tta"], summary["epochs"], fit_seconds,
                 run_dir)
    else:
        log.info("Best PublicTest accuracy %.4f after %d epochs in %.0f s (no test pass); run dir %s",
                 summary["val/acc_best"], summary["epochs"], fit_seconds, run_dir)
    return summary
