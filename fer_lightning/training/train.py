"""``train(cfg)``: the one function that fer-train, tuning, fer-bench and the tests all call.

Fit on Training with PublicTest as validation, then evaluate the best checkpoint once on PrivateTest (with the
test-time augmentation PublicTest prefers) and leave the run's report, logits for stacking, and TensorBoard
figures in its run dir.

Under ``trainer.strategy=ddp`` every process runs this function: they fit and test together, and only rank 0
chooses the TTA, computes and saves the logits, and writes the report, summary and figures, so a run dir holds
one of each whatever the number of processes.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.errors import ConfigError, FerError, check_number, check_switch, check_whole_number
from fer_lightning.figures import log_png, save_png
from fer_lightning.host_memory import keep_freed_memory
from fer_lightning.inference.calibration import errors_before_and_after, fit_temperature
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.tta import checked_candidates, choose_tta
from fer_lightning.models.classifier import EmotionClassifier
from fer_lightning.models.flops import face_flops
from fer_lightning.models.whitening import whiten_first_conv
from fer_lightning.precision import inference_bf16, resolve_precision
from fer_lightning.training.hparams import run_knobs
from fer_lightning.training.reports import curves_figure, mistakes_figure, reliability_figure, write_report
from fer_lightning.training.run_dir import RunDir, RunSummary
from fer_lightning.training.teacher_nets import TeacherNets
from fer_lightning.training.time_budget import FitInMinutes

log = logging.getLogger(__name__)

WHITENING_FACES = 5000  # Training faces whose patches set the first conv's whitening filters
MAX_SEED = 2**32 - 1
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def train(cfg: DictConfig, extra_callbacks: Sequence[Callback] = ()) -> RunSummary:
    """Train, test the best checkpoint on PrivateTest (unless ``cfg.test`` is false), write the run's files.

    ``extra_callbacks`` are objects no config can describe, such as a tuning trial's pruning callback.
    """
    start = time.perf_counter()
    _quiet_lightning()
    _check_seed(cfg.seed)
    _check_recipe(cfg)
    tta_candidates = checked_candidates(cfg.tta) if cfg.test else []  # first used after training
    L.seed_everything(cfg.seed, workers=True)
    run_dir = _checked_run_dir(cfg)
    ckpt_path = run_dir.checkpoint_to_resume(cfg.ckpt_path)
    if ckpt_path:
        log.info("Resuming from %s", ckpt_path)
    precision, channels_last = resolve_precision(cfg.trainer.precision, cfg.channels_last, cfg.trainer.accelerator)
    compile_options = compile_kwargs(cfg.compile)
    if cfg.keep_freed_memory:
        keep_freed_memory()
    datamodule = _datamodule(cfg, precision)
    model = _model(cfg, datamodule, channels_last, whiten=cfg.whiten_first_conv and not ckpt_path)
    forward_mflops = face_flops(model)[""] / 1e6
    if compile_options is not None:
        model.net.compile(**compile_options)  # in place: state_dict keys stay plain, so checkpoints load uncompiled
    loggers = _instantiate_all(cfg.logger)
    callbacks = [*_instantiate_all(cfg.callbacks), *extra_callbacks]
    if cfg.fit_minutes:
        callbacks.append(FitInMinutes(cfg.fit_minutes))
    trainer = _trainer(cfg, precision, callbacks, loggers)
    with warnings.catch_warnings():
        if ckpt_path:  # a resumed run's checkpoints are meant to be in its dir: Lightning's warning says nothing
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .+ exists and is not empty")
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)

    val_acc_best = trainer.callback_metrics.get("val/acc_best")  # read before testing replaces the metrics
    summary = RunSummary(val_acc_best=float(val_acc_best) if val_acc_best is not None else float("nan"),
                         epochs=trainer.current_epoch, fit_seconds=round(time.perf_counter() - start, 1),
                         precision=precision, device=str(trainer.strategy.root_device),
                         forward_mflops_per_face=round(forward_mflops, 3))
    figures: dict[str, Path] = {}
    if cfg.test:
        tested = _test(trainer, model, datamodule)
        if trainer.is_global_zero:
            figures.update(_report(trainer, model, datamodule, run_dir, tta_candidates, tested, summary))
    if not trainer.is_global_zero:
        return summary
    run_dir.write_summary(summary)
    _write_logs(loggers, run_dir, run_knobs(cfg, precision), summary, figures, trainer.global_step)
    _log_outcome(summary, run_dir)
    return summary


def _quiet_lightning() -> None:
    """Lightning's lines once each, and none that a user can do nothing about.

    The ``lightning`` package gives its logger a console handler of its own and still passes each record on to the
    root logger, where the commands' Hydra handler prints it again: every Lightning line came twice. Where the root
    logger has a handler, Lightning's own goes. Left out: Lightning's advertisement for its cloud logger, its own
    use of an API torch deprecates, the model summary's note that it counts bf16 weights as 32-bit, and its advice
    to lower ``log_every_n_steps`` when an epoch has fewer batches: every metric here is logged once an epoch, so
    the interval changes nothing (batches of 1,024 on a GPU make epochs of 28 steps).
    """
    if logging.getLogger().hasHandlers():
        lightning_logger = logging.getLogger("lightning")
        for handler in [h for h in lightning_logger.handlers if type(h) is logging.StreamHandler]:
            lightning_logger.removeHandler(handler)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_an_advertisement)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"Precision \S+ is not supported by the model summary")
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")


def _not_an_advertisement(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip:")


def _check_seed(seed: Any) -> None:
    """ConfigError unless ``seed`` is null (a random one) or an integer NumPy takes."""
    if seed is not None and not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, or null for a random one; got {seed!r}")


def _check_recipe(cfg: DictConfig) -> None:
    """ConfigError unless the run has epochs to train, positive learning rates, a label smoothing from 0 to 1 and
    true or false for each switch (``test=maybe`` counted as true).
    Lightning takes ``max_epochs=-1`` as "no end", which a one-cycle schedule, sized to the run, cannot be (it
    failed with an OverflowError), and ``0`` as "train nothing" (PrivateTest was then read for an untrained net); a
    negative rate trained away from the labels without a word; torch refuses a smoothing above 1 only at the first
    step."""
    check_whole_number("trainer.max_epochs", cfg.trainer.max_epochs, "epochs")
    for key in ("optimizer.lr", "scheduler.max_lr"):
        rate = OmegaConf.select(cfg.model, key)
        if rate is not None:
            check_number(f"model.{key}", rate, above=0)
    check_number("model.label_smoothing", cfg.model.get("label_smoothing", 0.0), least=0, most=1)
    for key in ("test", "keep_freed_memory", "whiten_first_conv", "fuse_tails"):
        check_switch(key, cfg[key])
    check_number("min_free_disk_mb", cfg.min_free_disk_mb, least=0)


def compile_kwargs(setting: bool | str) -> dict[str, str] | None:
    """``compile``: false, true (torch.compile's default mode) or one of its modes, as keyword arguments for
    ``nn.Module.compile`` (None: no compiling). ``reduce-overhead`` adds CUDA graphs on a GPU: one launch per step
    instead of one per kernel, which pays where launches outlast the arithmetic, as with the study's small nets."""
    if isinstance(setting, bool):
        return {} if setting else None
    if setting in COMPILE_MODES:
        return {"mode": setting}
    raise ConfigError(f"compile must be true, false or a torch.compile mode ({', '.join(COMPILE_MODES)}), "
                      f"got {setting!r}")


def _checked_run_dir(cfg: DictConfig) -> RunDir:
    """The run dir, writable and with room to spare; ``resume=`` must already have been expanded into it."""
    run_dir = RunDir(Path(cfg.paths.output_dir))
    if cfg.resume and Path(cfg.resume).resolve() != run_dir.path.resolve():
        raise FerError(f"resume={cfg.resume} is expanded by fer-train into that run's dir and overrides; "
                       f"here the output dir is {run_dir.path}. Use ckpt_path=<file> when calling train() directly")
    run_dir.check_writable(cfg.min_free_disk_mb)
    return run_dir


def _datamodule(cfg: DictConfig, precision: str) -> FerDataModule:
    """The DataModule, set up; with ``teacher_runs``, their nets teaching it on each batch in ``precision``."""
    datamodule: FerDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    if cfg.teacher_runs:
        datamodule.teach_on_batches(TeacherNets(cfg.teacher_runs, datamodule.mean, datamodule.std,
                                                datamodule.teacher_weight, datamodule.teacher_temperature, precision))
    return datamodule


def _model(cfg: DictConfig, datamodule: FerDataModule, channels_last: bool, whiten: bool) -> EmotionClassifier:
    """The LightningModule; ``whiten`` starts its first conv from Training's patches (a few seconds), which a run
    that loads a checkpoint skips: the checkpoint's weights replace it."""
    if cfg.class_weights not in (None, "balanced"):
        raise ConfigError(f"class_weights must be null or 'balanced', got {cfg.class_weights!r}")
    class_weights = datamodule.balanced_class_weights() if cfg.class_weights == "balanced" else None
    model = instantiate(cfg.model, class_weights=class_weights, channels_last=channels_last, sam_rho=cfg.sam_rho,
                        _convert_="all")
    # Set after instantiate, which would otherwise build this _target_ node into a second network.
    model.hparams.net_config = OmegaConf.to_container(cfg.model.net, resolve=True)
    if whiten:
        train_images, _ = datamodule.data.split("Training")
        faces = torch.from_numpy(train_images[:WHITENING_FACES]).unsqueeze(1)
        filters = whiten_first_conv(model.net, datamodule.normalize(faces))
        log.info("First conv: %d filters start as whitening pairs for Training's patches", filters)
    return model


def _trainer(cfg: DictConfig, precision: str, callbacks: list[Callback], loggers: list[Logger]) -> L.Trainer:
    """Lightning's Trainer from ``trainer.*``; a value its constructor refuses with a ValueError (a precision it does
    not know, say) is a ConfigError naming it, as its MisconfigurationExceptions already are (fer_lightning.cli)."""
    callbacks, switches = _default_callback_switches(cfg.trainer, callbacks)
    try:
        return instantiate(cfg.trainer, precision=precision, callbacks=callbacks, logger=loggers or False, **switches)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError):
            raise ConfigError(f"trainer: {err.__cause__}") from err
        raise


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named _target_ nodes; a node set to null is switched off."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def _default_callback_switches(trainer_cfg: DictConfig,
                               callbacks: list[Callback]) -> tuple[list[Callback], dict[str, bool]]:
    """Lightning adds a default progress bar and table of layers where the callbacks hold none; here
    ``callbacks.progress_bar=null`` means no bar and ``callbacks.model_summary=null`` no table.
    ``trainer.enable_progress_bar`` and ``trainer.enable_model_summary``, where set, have the last word: false
    leaves that kind out of the callbacks. Unset, the bar's switch follows the callbacks (Lightning refuses a bar it
    was told not to show) and the table's is false: it only adds Lightning's default table, and true beside ours
    logs a line saying that it did not."""
    switches = {}
    if "enable_progress_bar" not in trainer_cfg:
        switches["enable_progress_bar"] = any(isinstance(callback, ProgressBar) for callback in callbacks)
    if "enable_model_summary" not in trainer_cfg:
        switches["enable_model_summary"] = False
    for switch, kind in (("enable_progress_bar", ProgressBar), ("enable_model_summary", ModelSummary)):
        if not trainer_cfg.get(switch, True):
            callbacks = [callback for callback in callbacks if not isinstance(callback, kind)]
    return callbacks, switches


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """Path of the best checkpoint, or None when none was written (fast_dev_run) and current weights count."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


def _test(trainer: L.Trainer, model: EmotionClassifier, datamodule: FerDataModule) -> Mapping[str, float]:
    """``trainer.test`` of the best checkpoint (all processes together under DDP): single-pass test metrics,
    logged, and the tested weights left in ``model``."""
    best = _best_checkpoint(trainer)
    log.info("Testing %s on PrivateTest", best or "the final weights")
    return trainer.test(model, datamodule=datamodule, ckpt_path=best)[0]


def _report(trainer: L.Trainer, model: EmotionClassifier, datamodule: FerDataModule, run_dir: RunDir,
            tta_candidates: Sequence[str], test_results: Mapping[str, float], summary: RunSummary) -> dict[str, Path]:
    """Rank 0's part of the one PrivateTest pass: pick TTA and the confidences' temperature on PublicTest, save
    logits, write the report.

    The report and the saved logits use the TTA that scored best on PublicTest, so stacking and fer-predict see
    the same predictions the report describes; they run on every face in one process, so they do not depend on
    how DDP shared the test set out. Fills in the summary's PrivateTest fields and returns the PNGs of the confusion
    matrix, the most confident mistakes and the confidences against accuracy, by TensorBoard tag.
    """
    best = _best_checkpoint(trainer)
    device = trainer.strategy.root_device
    net = model.net.to(device).eval()  # Lightning's teardown moved it to the CPU; TTA runs where it trained
    classifier = FaceClassifier(net, datamodule.mean, datamodule.std, Path(best or run_dir.path),
                                inference_bf16(summary.precision, device.type))
    val_images, val_labels = datamodule.data.split("PublicTest")
    test_images, test_labels = datamodule.data.split("PrivateTest")
    classifier.tta, tta_scores, val_logits = choose_tta(classifier.net_logits, val_images, val_labels,
                                                        tta_candidates)
    log.info("TTA on PublicTest: %s; using %s",
             ", ".join(f"{name} {acc:.4f}" for name, acc in tta_scores.items()), classifier.tta)
    test_logits = classifier.logits(test_images)
    unseen = datamodule.without_training_copy("PrivateTest")
    run_dir.save_logits("PublicTest", val_logits, val_labels)
    run_dir.save_logits("PrivateTest", test_logits, test_labels, unseen)
    report, confusion = write_report(run_dir.path, "PrivateTest", test_logits, test_labels, unseen)
    mistakes = save_png(mistakes_figure(test_images, test_logits, test_labels, title="PrivateTest"),
                        run_dir.path / "mistakes.png")
    reliability = _confidence_report(val_logits, val_labels, test_logits, test_labels, summary, run_dir)
    summary.val_acc = float(np.mean(val_logits.argmax(1) == val_labels))
    summary.test_acc, summary.test_f1_macro = report["accuracy"], report["macro"]["f1"]
    summary.test_acc_ci95 = report["accuracy_ci95"]
    summary.test_loss, summary.test_acc_single_pass = float(test_results["test/loss"]), float(test_results["test/acc"])
    summary.tta, summary.tta_val_acc, summary.best_checkpoint = classifier.tta, tta_scores, best
    unseen_report = report["unseen"]
    summary.test_acc_unseen, summary.test_f1_macro_unseen = unseen_report["accuracy"], unseen_report["macro"]["f1"]
    summary.test_unseen_faces = unseen_report["n"]
    return {"test/confusion_matrix": confusion, "test/mistakes": mistakes, "test/reliability": reliability}


def _confidence_report(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray,
                       test_labels: np.ndarray, summary: RunSummary, run_dir: RunDir) -> Path:
    """The softmax temperature that fer-predict's confidences use, fitted on PublicTest, and how far PrivateTest's
    confidences miss their accuracy with and without it: into the summary, the log and reliability.png (returned)."""
    summary.temperature = fit_temperature(val_logits, val_labels)
    summary.test_ece, summary.test_ece_calibrated = errors_before_and_after(test_logits, test_labels,
                                                                            summary.temperature)
    log.info("Confidences: temperature %.2f fitted on PublicTest; PrivateTest's calibration error %.1f%% as trained, "
             "%.1f%% with it (fer-predict's)", summary.temperature, 100 * summary.test_ece,
             100 * summary.test_ece_calibrated)
    figure = reliability_figure(test_logits, test_labels, summary.temperature, title="PrivateTest")
    return save_png(figure, run_dir.path / "reliability.png")


def _write_logs(loggers: Sequence[Logger], run_dir: RunDir, knobs: dict[str, Any], summary: RunSummary,
                figures: dict[str, Path], step: int) -> None:
    """TensorBoard gets the report's PNGs and the knobs beside the metrics; the CSV log becomes curves.png."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            for tag, png in figures.items():
                log_png(logger.experiment, tag, png, step)
            metrics = {f"hp/{key.replace('/', '_')}": value for key, value in summary.metrics().items()}
            logger.log_hyperparams(knobs, metrics=metrics)
            logger.experiment.flush()  # written after fit's finalize: on disk now, not at interpreter exit
        if isinstance(logger, CSVLogger):
            logger.save()
            metrics_csv = Path(logger.log_dir) / "metrics.csv"
            if metrics_csv.is_file():
                save_png(curves_figure(metrics_csv), run_dir.path / "curves.png", 110)


def _log_outcome(summary: RunSummary, run_dir: RunDir) -> None:
    epochs = f"{summary.epochs} epoch{'' if summary.epochs == 1 else 's'}"
    if summary.test_acc is not None and summary.test_acc_ci95 is not None:
        log.info("PrivateTest accuracy %.4f (95%% interval %.4f-%.4f), macro F1 %.4f (TTA %s) after %s in %.0f s; "
                 "on the %d faces without a copy in Training %.4f, macro F1 %.4f; run dir %s", summary.test_acc,
                 *summary.test_acc_ci95, summary.test_f1_macro, summary.tta, epochs, summary.fit_seconds,
                 summary.test_unseen_faces, summary.test_acc_unseen, summary.test_f1_macro_unseen, run_dir.path)
    else:
        log.info("Best PublicTest accuracy %.4f after %s in %.0f s (no test pass); run dir %s",
                 summary.val_acc_best, epochs, summary.fit_seconds, run_dir.path)
