"""``stack(cfg)``: what fer-stack runs. Fit every configured meta-learner on PublicTest, score it on PrivateTest.

Writes into the run dir: stack_table.csv (base models, soft voting, each meta-learner; each PrivateTest accuracy with
its 95% interval, its gain over the base run best on PublicTest with the paired 95% interval of that gain, and how far
its confidences are from its accuracy with and without the temperature fitted on PublicTest), comparison.png, and for
the chosen meta-learner (``meta=``) its meta_model.joblib, metrics.json, classification_report.txt,
confusion_matrix.png and reliability.png; the same figures and the table go to TensorBoard.
``teacher=true`` also writes the chosen stacker's predictions for every Training face (``teacher_train.npz``), for
students (``data.teacher``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from rich.progress import track
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.data.teacher import TEACHER_FILE, write_teacher
from fer_lightning.ensemble.stack_inputs import StackingError, checked_run_dirs
from fer_lightning.ensemble.stacking import (
    BaseRun,
    MetaLearner,
    Stacker,
    check_aligned,
    fit_by_cv,
    meta_features,
)
from fer_lightning.fer2013 import SPLITS
from fer_lightning.figures import log_png, save_png
from fer_lightning.host_memory import keep_freed_memory
from fer_lightning.inference.calibration import (
    errors_before_and_after,
    fit_temperature,
    log_probabilities,
    probability_temperature,
)
from fer_lightning.inference.runtime_names import AUTO, checked_runtime
from fer_lightning.inference.runtimes import chosen_runtime
from fer_lightning.precision import inference_bf16
from fer_lightning.training.reports import (
    accuracy_bars,
    classification_metrics,
    paired_gain,
    reliability_figure,
    write_report,
)

log = logging.getLogger(__name__)
TABLE_COLUMNS = ["name", "kind", "features", "publictest_acc", "cv_acc", "privatetest_acc", "privatetest_acc_low",
                 "privatetest_acc_high", "gain", "gain_low", "gain_high", "privatetest_f1_macro",
                 "privatetest_acc_unseen", "temperature", "privatetest_ece", "privatetest_ece_calibrated",
                 "best_params"]


def configured_learners(cfg: DictConfig) -> list[MetaLearner]:
    """The chosen ``meta`` first, then the ``compare`` learners not already chosen, in config order."""
    nodes = [cfg.meta, *(node for node in (cfg.get("compare") or {}).values() if node is not None)]
    learners: dict[str, MetaLearner] = {}
    for node in nodes:
        if node.name not in learners:
            grid = OmegaConf.to_container(node.grid, resolve=True) if node.get("grid") else {}
            learners[node.name] = MetaLearner(node.name, instantiate(node.estimator, _convert_="all"),
                                              node.features or cfg.features, cast(dict[str, list[Any]], grid))
    return list(learners.values())


def comparison_figure(table: pd.DataFrame) -> Figure:
    """PrivateTest accuracy per model and stacker with its 95% interval, best at the top; soft voting's bar marks
    the line to beat."""
    ordered = table.sort_values("privatetest_acc")
    colors = ordered["kind"].map({"base": "tab:gray", "stacker": "tab:blue"}).where(
        ordered["name"] != "soft_vote", "tab:orange")
    accuracy, low, high = (ordered[column].to_numpy() * 100 for column in
                           ("privatetest_acc", "privatetest_acc_low", "privatetest_acc_high"))
    fig, _ = accuracy_bars(ordered["name"].tolist(), accuracy, low, high, colors.tolist())
    fig.suptitle("Base models (grey), soft voting (orange), stackers (blue)")  # over the figure: run names are long
    return fig


def _printable(table: pd.DataFrame) -> str:
    """The table for the log: the names last and left-aligned, so that long run names do not push the figures
    apart."""
    width = table["name"].str.len().max()
    shown = table.drop(columns=["best_params", "name"]).assign(name=table["name"].str.ljust(width))
    return shown.to_string(index=False, na_rep="", float_format="{:.4f}".format, justify="left")


def _row(name: str, kind: str, labels: np.ndarray, scores: np.ndarray, temperature: float, unseen: np.ndarray | None,
         reference_correct: np.ndarray, **extra: Any) -> dict[str, Any]:
    """One line of stack_table.csv from PrivateTest ``scores`` (a base run's logits or a stacker's log-probabilities)
    and the ``temperature`` fitted on PublicTest; ``reference_correct`` says which faces the reference run got right."""
    predictions = scores.argmax(1)
    metrics = classification_metrics(labels, predictions)
    (low, high), gain = metrics["accuracy_ci95"], paired_gain(predictions == labels, reference_correct)
    ece, ece_calibrated = errors_before_and_after(scores, labels, temperature)
    row = {"name": name, "kind": kind, **extra, "privatetest_acc": metrics["accuracy"], "privatetest_acc_low": low,
           "privatetest_acc_high": high, **dict(zip(("gain", "gain_low", "gain_high"), gain, strict=True)),
           "privatetest_f1_macro": metrics["macro"]["f1"], "temperature": temperature, "privatetest_ece": ece,
           "privatetest_ece_calibrated": ece_calibrated}
    if unseen is not None:
        row["privatetest_acc_unseen"] = classification_metrics(labels[unseen], predictions[unseen])["accuracy"]
    return row


def unseen_by_all(runs: list[BaseRun]) -> np.ndarray | None:
    """PrivateTest faces with no copy in the Training rows of any base run; None if a run did not record it."""
    masks = [run.run_dir.unseen() for run in runs]
    recorded = [mask for mask in masks if mask is not None]
    return np.logical_and.reduce(recorded) if len(recorded) == len(masks) else None


def teacher_runtime(setting: str) -> str:
    """``teacher_runtime``: ``auto`` is torch on a GPU where there is one, else the graph runtime fer-predict picks on
    this CPU (``chosen_runtime``; OpenVINO did 1.2x torch's faces per second in bf16 and 1.8x in float32 on a Zen 4
    EPYC, docs/results.md); or one of FaceClassifier's runtimes by name."""
    if checked_runtime(setting, "teacher_runtime") == AUTO:
        return "torch" if torch.cuda.is_available() else chosen_runtime(AUTO, inference_bf16("auto", "cpu"))
    return setting


def write_training_predictions(stacker: Stacker, csv_path: str, cache_dir: str | None, path: Path, runtime: str,
                               chunk: int = 2048) -> dict[str, Any]:
    """The stacker's probabilities for every Training face of the CSV (each base with its TTA, on ``runtime``), as a
    teacher file for ``data.teacher``; on a GPU where there is one. Returns the file and how the teacher fits
    Training: how often its top class is the label and its mean top probability (a teacher that is right and sure on
    nearly every face teaches little beyond the labels)."""
    data = load_fer2013(csv_path, cache_dir)
    training = data.usage == SPLITS.index("Training")
    images = data.images[training]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bases = stacker.base_classifiers(inference_bf16("auto", device), runtime)
    for base in bases:
        base.net.to(device)
    chunks = [stacker.predict_images(images[start:start + chunk], bases)
              for start in track(range(0, len(images), chunk), description="Teacher on Training faces")]
    probabilities = np.concatenate(chunks)
    write_teacher(path, data.lines[training], probabilities)
    fit: dict[str, Any] = {"teacher": str(path),
                           "teacher_train/acc": float(np.mean(probabilities.argmax(1) == data.labels[training])),
                           "teacher_train/confidence": float(probabilities.max(1).mean())}
    log.info("Wrote %s: %s's probabilities for %d Training faces (its top class is the label on %.1f%% of them, "
             "mean top probability %.3f)", path, stacker.name, len(images), 100 * fit["teacher_train/acc"],
             fit["teacher_train/confidence"])
    return fit


def _fit_stackers(cfg: DictConfig, runs: list[BaseRun], unseen: np.ndarray | None,
                  reference_correct: np.ndarray) -> tuple[dict[str, Stacker], list[dict[str, Any]]]:
    """Each configured meta-learner tuned by CV on PublicTest, refit on it and scored once on PrivateTest: the
    stackers by name, and their rows of stack_table.csv.

    A learner compared beside the chosen one that cannot be fitted on this PublicTest (gradient boosting holds out
    10% of each fold, which on a few dozen faces leaves fewer than one per class) is left out of the table, saying
    why; the chosen one failing so is an error.
    """
    val_labels, test_labels = runs[0].val_labels, runs[0].test_labels
    stackers: dict[str, Stacker] = {}
    rows = []
    for learner in configured_learners(cfg):
        start = time.perf_counter()
        val_features = meta_features([run.val_logits for run in runs], learner.features)
        try:
            fitted = fit_by_cv(learner, val_features, val_labels, cfg.cv_folds, cfg.seed, torch.get_num_threads())
        except ValueError as err:
            reason = f"{learner.name} cannot be fitted on these {len(val_labels)} PublicTest faces: {err}"
            if learner.name == cfg.meta.name:
                raise StackingError(f"meta={reason}") from err
            log.warning("Left out of the comparison: %s", reason)
            continue
        temperature = probability_temperature(fitted.out_of_fold_proba, val_labels)
        stacker = Stacker(learner.name, learner.features, fitted.estimator, [str(r.run_dir.path) for r in runs],
                          [r.run_dir.best_checkpoint() for r in runs], [r.run_dir.tta() for r in runs], temperature)
        test_proba = stacker.predict_proba([run.test_logits for run in runs])
        rows.append(_row(learner.name, "stacker", test_labels, log_probabilities(test_proba), temperature, unseen,
                         reference_correct, features=learner.features, cv_acc=fitted.cv_accuracy,
                         best_params=json.dumps(fitted.best_params)))
        stackers[learner.name] = stacker
        log.info("%s on %s: CV accuracy %.4f on PublicTest (%s), PrivateTest %.4f, %.1f s", learner.name,
                 learner.features, fitted.cv_accuracy, fitted.best_params or "no hyperparameters",
                 rows[-1]["privatetest_acc"], time.perf_counter() - start)
    return stackers, rows


def _write_figures(out: Path, table: pd.DataFrame, pngs: dict[str, Path]) -> None:
    """comparison.png; TensorBoard gets it, the PNGs in ``pngs`` (by tag) and the table."""
    pngs = {**pngs, "stack/comparison": save_png(comparison_figure(table), out / "comparison.png", 110)}
    with SummaryWriter(str(out / "tensorboard")) as writer:
        for tag, png in pngs.items():
            log_png(writer, tag, png)
        writer.add_text("stack/table", "\n".join("    " + line for line in table.to_string().splitlines()))


def stack(cfg: DictConfig) -> dict[str, Any]:
    """Fit, compare and save; returns the chosen stacker's headline figures."""
    # teacher=true: the runtime its pass over Training runs on, checked before the stackers' fits
    teacher_on = teacher_runtime(cfg.teacher_runtime) if cfg.teacher else None
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [BaseRun.load(path) for path in checked_run_dirs(cfg)]
    check_aligned(runs)
    val_labels, test_labels = runs[0].val_labels, runs[0].test_labels
    log.info("Stacking %d runs: %s", len(runs), ", ".join(run.name for run in runs))

    unseen = unseen_by_all(runs)
    publictest_acc = [float(np.mean(run.val_logits.argmax(1) == val_labels)) for run in runs]
    reference = runs[int(np.argmax(publictest_acc))]  # chosen on PublicTest, as every choice here
    reference_correct = reference.test_logits.argmax(1) == test_labels
    rows = [_row(run.name, "base", test_labels, run.test_logits, fit_temperature(run.val_logits, val_labels), unseen,
                 reference_correct, publictest_acc=acc) for run, acc in zip(runs, publictest_acc, strict=True)]
    stackers, stacker_rows = _fit_stackers(cfg, runs, unseen, reference_correct)
    rows += stacker_rows
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.to_csv(out / "stack_table.csv", index=False)
    log.info("Stacking results (PrivateTest scored once; CV on PublicTest; gain: PrivateTest accuracy over %s, the "
             "run best on PublicTest, with its paired 95%% interval):\n%s", reference.name, _printable(table))

    chosen = stackers[cfg.meta.name]
    chosen.save(out / "meta_model.joblib")
    chosen_proba = chosen.predict_proba([run.test_logits for run in runs])
    report, confusion = write_report(out, "PrivateTest", chosen_proba, test_labels, unseen)
    reliability = reliability_figure(log_probabilities(chosen_proba), test_labels, chosen.temperature,
                                     title=f"PrivateTest, {chosen.name}", unscaled=f"{chosen.name}'s own")
    _write_figures(out, table, {"stack/confusion_matrix": confusion,
                                "stack/reliability": save_png(reliability, out / "reliability.png")})

    soft_vote = table.loc[table["name"] == "soft_vote", "privatetest_acc"]
    chosen_row = next(row for row in stacker_rows if row["name"] == chosen.name)
    gain, gain_low, gain_high = chosen_row["gain"], chosen_row["gain_low"], chosen_row["gain_high"]
    summary = {
        "meta": chosen.name, "features": chosen.features, "runs": chosen.run_dirs,
        "test/acc": report["accuracy"], "test/acc_ci95": report["accuracy_ci95"],
        "test/f1_macro": report["macro"]["f1"], "temperature": chosen.temperature,
        "test/ece": chosen_row["privatetest_ece"], "test/ece_calibrated": chosen_row["privatetest_ece_calibrated"],
        "reference_run": str(reference.run_dir.path), "test/gain": gain, "test/gain_ci95": [gain_low, gain_high],
        "soft_vote_test/acc": float(soft_vote.iloc[0]) if len(soft_vote) else None,
        "best_base_test/acc": float(table.loc[table["kind"] == "base", "privatetest_acc"].max()),
    }
    unseen_report = report["unseen"]
    if unseen_report is not None:  # PrivateTest without the faces that have a copy in any run's Training rows
        summary |= {"test/acc_unseen": unseen_report["accuracy"], "test/f1_macro_unseen": unseen_report["macro"]["f1"],
                    "test_unseen_faces": unseen_report["n"]}
    if teacher_on:
        if cfg.keep_freed_memory:  # each chunk's activations are hundreds of MB, faulted in afresh otherwise (2.2x)
            keep_freed_memory()
        summary |= write_training_predictions(chosen, cfg.csv_path, cfg.cache_dir, out / TEACHER_FILE, teacher_on)
    (out / "stack.json").write_text(json.dumps(summary, indent=2))
    log.info("%s stack: PrivateTest accuracy %.4f (95%% interval %.4f-%.4f), %+.4f over %s (paired 95%% interval "
             "%+.4f to %+.4f), macro F1 %.4f; calibration error %.1f%% on its own, %.1f%% at the temperature %.2f "
             "fitted on PublicTest (fer-predict's); run dir %s", chosen.name, summary["test/acc"],
             *summary["test/acc_ci95"], gain, reference.name, gain_low, gain_high, summary["test/f1_macro"],
             100 * summary["test/ece"], 100 * summary["test/ece_calibrated"], chosen.temperature, out)
    return summary
