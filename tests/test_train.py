"""train(cfg) end to end on the synthetic CSV (and on a slice of the real data when FER2013_CSV is set)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import REAL_CSV, teacher_file
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelSummary
from scipy.special import softmax
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch import nn

from fer_lightning.cli.common import exit_on_error
from fer_lightning.data.resident import ResidentBatches
from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.inference.calibration import expected_calibration_error, fit_temperature
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.tta import checked_candidates
from fer_lightning.precision import choose_precision
from fer_lightning.training.train import compile_kwargs, train

KNOBS = {"model", "whiten_first_conv", "optimizer", "scheduler", "peak_lr", "weight_decay", "l2_in_loss",
         "label_smoothing", "sam_rho", "conv_dropout", "dense_dropout", "augmentation", "batch_size", "max_epochs",
         "fit_minutes", "seed", "precision"}
RUN_FILES = {"metrics.json", "summary.json", "classification_report.txt", "confusion_matrix.png", "curves.png",
             "mistakes.png", "reliability.png", "logits_val.npz", "logits_test.npz"}


@pytest.mark.parametrize("model", ["relu", "leaky"])
def test_fast_dev_run(train_cfg, model: str, caplog) -> None:
    caplog.set_level("INFO", logger="fer_lightning")
    summary = train(train_cfg(f"model={model}", "+trainer.fast_dev_run=true"))
    assert 0.0 <= summary.test_acc <= 1.0
    assert summary.epochs == 1 and ") after 1 epoch in " in caplog.text
    assert summary.best_checkpoint is None  # fast_dev_run writes none; the final weights are tested


def test_run_writes_reports_checkpoints_and_tensorboard(train_cfg, tmp_path: Path, caplog, recwarn) -> None:
    caplog.set_level("INFO", logger="fer_lightning")
    summary = train(train_cfg("trainer.max_epochs=2"))
    assert "epoch 1/2 train/loss=" in caplog.text and "epoch 2/2 train/loss=" in caplog.text
    assert ") after 2 epochs in " in caplog.text
    # epochs of a few batches, under log_every_n_steps: Lightning's advice to lower it is not shown (metrics are
    # logged per epoch)
    assert not [w for w in recwarn if "logging interval" in str(w.message)]
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    assert (run / "checkpoints" / "last.ckpt").is_file() and Path(summary.best_checkpoint).is_file()
    assert summary.epochs == 2 and 0.0 <= summary.val_acc_best <= 1.0

    metrics = json.loads((run / "metrics.json").read_text())["PrivateTest"]
    assert metrics["n"] == 42 and set(metrics["per_class"]) == set(CLASS_NAMES)
    assert metrics["accuracy"] == pytest.approx(summary.test_acc)
    saved = json.loads((run / "summary.json").read_text())
    assert saved["epochs"] == 2 and saved["test/acc_ci95"] == metrics["accuracy_ci95"] == summary.test_acc_ci95
    assert saved["forward_mflops_per_face"] == 133.756  # the study's ReLU net, by hand in test_model
    low, high = summary.test_acc_ci95
    assert low < summary.test_acc < high and high - low > 0.2  # 42 faces tell little
    test = np.load(run / "logits_test.npz")
    assert test["logits"].shape == (42, 7) and test["labels"].shape == (42,)
    assert np.mean(test["logits"].argmax(1) == test["labels"]) == pytest.approx(metrics["accuracy"])
    val = np.load(run / "logits_val.npz")
    assert val["logits"].shape == (42, 7)
    # TTA was chosen on PublicTest among the configured candidates, and the saved logits are its predictions.
    assert set(summary.tta_val_acc) == {"none", "hflip"} and summary.tta in summary.tta_val_acc
    assert summary.tta_val_acc[summary.tta] == max(summary.tta_val_acc.values())
    assert np.mean(val["logits"].argmax(1) == val["labels"]) == pytest.approx(summary.tta_val_acc[summary.tta])
    # fer-predict's temperature is the one fitted on those PublicTest logits; PrivateTest reports what it does.
    assert saved["temperature"] == fit_temperature(val["logits"], val["labels"])
    assert saved["test/ece"] == expected_calibration_error(softmax(test["logits"], axis=1), test["labels"])
    assert 0 <= saved["test/ece_calibrated"] <= 1 and "PrivateTest's calibration error" in caplog.text

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "val/f1_macro", "test/acc",
            "test/f1_macro", "hp/test_acc", "hp/test_acc_low", "hp/test_acc_high", "hp/val_acc_best",
            "hp/forward_mflops_per_face"} <= scalars
    confusion = events.Images("test/confusion_matrix")[0]
    assert confusion.width <= 700  # legible at TensorBoard's default card size, not scaled down from 1,500 px
    assert confusion.encoded_image_string == (run / "confusion_matrix.png").read_bytes()  # drawn once, the same
    assert events.Images("test/mistakes") and events.Images("test/reliability")
    start = events.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    hparams = HParamsPluginData.FromString(start).session_start_info.hparams
    assert set(hparams) == KNOBS  # the knobs runs differ in, not every flattened config path
    assert hparams["model"].string_value == "relu" and hparams["max_epochs"].number_value == 2
    assert hparams["conv_dropout"].string_value == "0.35/0.25/0.25/0.35"


def test_test_false_never_touches_privatetest(train_cfg, tmp_path: Path) -> None:
    summary = train(train_cfg("test=false"))
    assert summary.test_acc is None and 0.0 <= summary.val_acc_best <= 1.0
    written = {p.name for p in (tmp_path / "run").iterdir()}
    assert "summary.json" in written and not written & {"metrics.json", "logits_test.npz", "logits_val.npz"}


def test_same_seed_same_metrics(train_cfg, tmp_path: Path) -> None:
    first = train(train_cfg("seed=7", f"paths.output_dir={tmp_path / 'first'}"))
    second = train(train_cfg("seed=7", f"paths.output_dir={tmp_path / 'second'}"))
    assert first.test_acc == second.test_acc and first.test_loss == pytest.approx(second.test_loss)


def test_fused_block_tails_train_as_the_plain_layers_do(train_cfg, tmp_path: Path) -> None:
    """fuse_tails (on outside the tests' tiny runs) reaches the net through the config and changes no result.
    (LeakyReLU's tails: test_norm_pool.py.) In batches of 4, as test_bench.py's step_breakdown test: on an empty
    inductor cache, whichever runs second loads the tails the first compiled (8 s instead of 40-60)."""
    runs = {fused: tmp_path / f"fused_{fused}" for fused in ("true", "false")}
    for fused, run in runs.items():
        cfg = train_cfg(f"fuse_tails={fused}", "tta=[none]", f"paths.output_dir={run}", "data.batch_size=4")
        assert len(instantiate(cfg.model.net).fused_tails) == (3 if fused == "true" else 0)
        train(cfg)
    fused_logits, plain_logits = (np.load(run / "logits_test.npz")["logits"] for run in runs.values())
    np.testing.assert_allclose(fused_logits, plain_logits, rtol=1e-3, atol=1e-3)


def test_balanced_class_weights_and_weighted_sampler_train(train_cfg) -> None:
    summary = train(train_cfg("class_weights=balanced", "data.sampler=weighted", "experiment=seed_replication",
                              "trainer.max_epochs=1"))
    assert summary.epochs == 1


SUMMARY = "callbacks.model_summary={_target_: fer_lightning.training.callbacks.FaceFlopsSummary}"


@pytest.mark.parametrize(("overrides", "bar", "summary"), [
    (("callbacks.progress_bar={_target_: lightning.pytorch.callbacks.RichProgressBar}", SUMMARY), "RichProgressBar",
     "FaceFlopsSummary"),
    ((), None, None),  # tiny_run_overrides' null callbacks: Lightning would put its own bar and table back
    (("+trainer.enable_progress_bar=true", "+trainer.enable_model_summary=true"), "RichProgressBar",
     "RichModelSummary"),  # Lightning's own, asked for
    ((SUMMARY, "+trainer.enable_model_summary=false"), None, None),  # the trainer's switch has the last word
])
def test_null_callback_means_no_bar_and_no_table(train_cfg, overrides: tuple[str, ...], bar: str | None,
                                                 summary: str | None) -> None:
    seen = []

    class Watch(L.Callback):
        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            summaries = [type(c).__name__ for c in trainer.callbacks if isinstance(c, ModelSummary)]
            seen.append((trainer.progress_bar_callback and type(trainer.progress_bar_callback).__name__,
                         summaries[0] if summaries else None))

    train(train_cfg("+trainer.fast_dev_run=true", "test=false", *overrides), extra_callbacks=[Watch()])
    assert seen == [(bar, summary)]


def test_table_of_layers_counts_one_face(train_cfg, capsys, caplog) -> None:
    """Lightning's table said 0 FLOPs for every layer without an example batch; the study's net costs 133.8 M."""
    caplog.set_level("INFO", logger="fer_lightning")
    train(train_cfg("+trainer.fast_dev_run=true", "test=false", SUMMARY))
    assert "Skipping setting a default" not in caplog.text  # Lightning's line when its switch is on beside ours
    assert "Model: 967 K parameters, 133 M FLOPs in one face's forward pass" in caplog.text  # train.log's line
    table = capsys.readouterr().out
    assert "Total FLOPs: 133 M" in table
    assert re.search(r"│ net +│ FerCNN +│ +967 K │ train │ 133 M │", table)


def test_resident_batches_train_validate_and_test_on_soft_targets(train_cfg, fer_csv: Path, tmp_path: Path) -> None:
    """data.loader=resident on the CPU: the GPU's path (splits on the device, no DataLoader) end to end, here with
    a teacher's targets, CutMix/mixup on top and weight averaging (EMA), each of which changes what trains."""
    loaders, targets = [], []

    class Watch(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            loaders.extend([type(trainer.train_dataloader), type(trainer.val_dataloaders)])

        def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx) -> None:
            targets.append(batch[1])

    teacher, _, _ = teacher_file(fer_csv, tmp_path / "teacher.npz")
    summary = train(train_cfg("data.loader=resident", "trainer.max_epochs=2", f"data.teacher={teacher}",
                              "data.batch_mix={_target_: fer_lightning.data.mixing.BatchMix, mixup_alpha: 0.4, "
                              "cutmix_alpha: 1.0}", "+callbacks.ema={_target_: "
                              "lightning.pytorch.callbacks.EMAWeightAveraging, decay: 0.9}"),
                    extra_callbacks=[Watch()])
    assert summary.epochs == 2 and 0.0 <= summary.test_acc <= 1.0
    assert set(loaders) == {ResidentBatches}
    assert all(t.shape[1:] == (7,) and torch.allclose(t.sum(1), torch.ones(len(t))) for t in targets)
    checkpoint = torch.load(summary.best_checkpoint, weights_only=False)
    assert "current_model_state" in checkpoint  # EMA's weights are the checkpoint's; the raw ones ride along
    assert not all(torch.equal(checkpoint["state_dict"][k], v) for k, v in checkpoint["current_model_state"].items())


def test_a_small_resnet_trains_and_its_checkpoint_predicts(train_cfg) -> None:
    """Widths 16 and 32, not fewer: torch 2.13's float32 channels_last backward of a 1x1 stride-2 conv from 8 or
    fewer channels segfaults on a Zen 4 EPYC (2026-12-02), and took the suite down with it (ResNet-18 starts at 64)."""
    summary = train(train_cfg("model=resnet18", "model.net.widths=[16,32]", "model.net.blocks=[1,1]",
                              "trainer.max_epochs=1", "tta=[none]"))
    classifier = FaceClassifier.from_checkpoint(Path(summary.best_checkpoint))
    assert type(classifier.net).__name__ == "FerResNet"
    assert classifier.logits(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)


def test_compiled_network_trains_and_its_checkpoint_loads_uncompiled(train_cfg, monkeypatch) -> None:
    compiled = []
    plain_compile = nn.Module.compile

    def aot_eager_compile(module: nn.Module, **kwargs) -> None:  # autograd tracing without inductor's C++ builds
        compiled.append(type(module).__name__)
        plain_compile(module, backend="aot_eager")

    monkeypatch.setattr(nn.Module, "compile", aot_eager_compile)
    summary = train(train_cfg("compile=true", "trainer.max_epochs=1", "tta=[none]"))
    assert compiled == ["FerCNN"]
    classifier = FaceClassifier.from_checkpoint(Path(summary.best_checkpoint), bf16=False)
    assert classifier.logits(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)


@pytest.mark.parametrize(("setting", "options"), [(False, None), (True, {}),
                                                  ("reduce-overhead", {"mode": "reduce-overhead"})])
def test_compile_setting_becomes_torch_compile_arguments(setting, options) -> None:
    assert compile_kwargs(setting) == options


@pytest.mark.parametrize(("override", "error"), [
    ("compile=fast", "error: compile must be true, false or a torch.compile mode (default, "),
    ("seed=-5", "error: seed must be an integer from 0 to 4294967295, or null for a random one; got -5"),
    ("tta=[none,hflips]", "error: tta lists 'hflips'; each candidate must be one of none, hflip, shifts, "),
    ("data.batch_size=0", "error: data.batch_size must be a whole number of faces, at least 1; got 0"),
    ("trainer.max_epochs=-1", "error: trainer.max_epochs must be a whole number of epochs, at least 1; got -1"),
    ("model.scheduler.max_lr=-1", "error: model.scheduler.max_lr must be a number above 0, got -1"),
    ("model.optimizer.lr=0", "error: model.optimizer.lr must be a number above 0, got 0"),
    ("model.label_smoothing=1.5", "error: model.label_smoothing must be a number from 0 to 1, got 1.5"),
    ("data.batch_augment.rotate=ten", "error: data.batch_augment: rotate must be a number at least 0, got 'ten'"),
    ("data.batch_augment.scale=[1.1,0.9]", "error: data.batch_augment: scale must be [low, high] with 0 < low <= "),
    ("test=maybe", "error: test must be true or false, got 'maybe'"),
    ("fuse_tails=1", "error: fuse_tails must be true or false, got 1"),
    ("channels_last=maybe", "error: channels_last must be true, false or auto, got 'maybe'"),
    ("min_free_disk_mb=-5", "error: min_free_disk_mb must be a number at least 0, got -5"),
    ("data.num_workers=-1", "error: data.num_workers must be a whole number of loader processes, at least 0; got -1"),
])
def test_a_config_mistake_is_one_error_line_before_the_data_is_read(train_cfg, override: str, error: str) -> None:
    """What fer-train prints for it (``exit_on_error``, with the key Hydra was building where it was building one);
    the CSV named is not there, so each is found before anything reads it."""
    with pytest.raises(SystemExit) as exit_:
        exit_on_error(lambda: train(train_cfg(override, "data.csv_path=/no/such.csv")))
    assert str(exit_.value).startswith(error), exit_.value
    assert "\n" not in str(exit_.value)


@pytest.mark.parametrize(("override", "error"), [
    ("class_weights=inverse", "error: class_weights must be null or 'balanced', got 'inverse'"),
    ("model.net.activation=gelu", "error: model.net: model activation must be one of ('relu', 'leaky_relu'), "),
    ("trainer.precision=fp8", "error: trainer: Precision 'fp8' is invalid. Allowed precision values: "),
    ("sam_rho=wide", "error: sam_rho must be a number above 0 (the radius of SAM's neighbourhood), got 'wide'"),
    ("fit_minutes=soon", "error: fit_minutes must be a number above 0 (the minutes training may take), got 'soon'"),
    ("callbacks.stop_on_non_finite_loss.every_n_steps=0",
     "error: callbacks.stop_on_non_finite_loss.every_n_steps must be a whole number of steps, at least 1; got 0"),
])
def test_a_model_config_mistake_is_one_error_line_before_training(train_cfg, tmp_path: Path, override: str,
                                                                  error: str) -> None:
    """The model is built once the data is read (its start draws from the random state after the data's set-up)."""
    with pytest.raises(SystemExit) as exit_:
        exit_on_error(lambda: train(train_cfg(override)))
    assert str(exit_.value).startswith(error), exit_.value
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_one_tta_name_alone_is_a_list_of_one() -> None:
    assert checked_candidates("hflip") == ["hflip"]
    assert checked_candidates(["none", "hflip_shifts"]) == ["none", "hflip_shifts"]


@pytest.mark.skipif(not REAL_CSV, reason="set FER2013_CSV to run on the real FER-2013")
def test_real_fer2013_smoke(train_cfg, real_cache_dir: Path) -> None:
    # No PrivateTest pass: its report audits all 35,887 faces for copies first (112 s on the 2-core CI machine,
    # beyond the suite's budget); the audit itself is tested on synthetic copies in test_audit.py.
    summary = train(train_cfg("+trainer.limit_val_batches=2", "test=false", "trainer.precision=auto",
                              f"paths.cache_dir={real_cache_dir}", csv=REAL_CSV))
    assert summary.epochs == 1 and 0.0 <= summary.val_acc_best <= 1.0
    assert summary.precision == choose_precision("cpu")


def test_whitened_first_conv_trains_and_a_run_from_its_checkpoint_does_not_whiten(train_cfg, tmp_path: Path,
                                                                                  caplog) -> None:
    caplog.set_level("INFO", logger="fer_lightning")
    summary = train(train_cfg("whiten_first_conv=true", "trainer.max_epochs=1", "test=false"))
    assert "First conv: 48 filters start as whitening pairs" in caplog.text
    assert 0.0 <= summary.val_acc_best <= 1.0
    caplog.clear()
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    summary = train(train_cfg("whiten_first_conv=true", "trainer.max_epochs=2", "test=false", f"ckpt_path={last}"))
    assert summary.epochs == 2 and "First conv" not in caplog.text  # the checkpoint's weights, not a new start
