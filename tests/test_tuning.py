"""Optuna tuning: declared choices only, Hyperband prunes, a killed study resumes, processes share a study."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from conftest import CONF_DIR, compose_config, compose_train, tiny_run_overrides
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from fer_lightning.cli.train import tuned_model_searchpath
from fer_lightning.errors import FerError
from fer_lightning.training.run_dir import RunSummary
from fer_lightning.training.train import train
from fer_lightning.tuning.tune import _save_plots, shown_url, tune

REPO = Path(__file__).resolve().parents[1]
TINY_TRIALS = ["trainer.max_epochs=2", "+trainer.limit_train_batches=2", "trainer.precision=32-true",
               "fuse_tails=false", "data.batch_size=32", "data.eval_batch_size=64"]


def tune_overrides(tmp_path: Path, csv: Path, *extra: str) -> list[str]:
    train_args = ",".join(f'"{arg}"' for arg in [f"data.csv_path={csv}", f"paths.cache_dir={tmp_path / 'cache'}",
                                                  *TINY_TRIALS])
    return [f"storage=sqlite:///{tmp_path / 'optuna.db'}", f"study_dir={tmp_path / 'study'}",
            f"paths.log_dir={tmp_path / 'outputs'}", f"train_args=[{train_args}]", *extra]


def finished(val_acc_best: float) -> RunSummary:
    """What a stand-in for train() reports: only val_acc_best matters to the study."""
    return RunSummary(val_acc_best=val_acc_best, epochs=1, fit_seconds=0.0, precision="32-true", device="cpu")


def run_tune_in_process(overrides: list[str], run: Any = train) -> dict[str, Any]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return tune(compose("tune", overrides=overrides), Path(CONF_DIR), run=run)


def test_random_search_draws_only_the_declared_choices(tmp_path: Path, fer_csv: Path) -> None:
    seen: list[DictConfig] = []

    def record(cfg: DictConfig, extra_callbacks: list) -> RunSummary:
        seen.append(cfg)
        return finished(float(cfg.model.net.conv_blocks[0].filters) / 1000)

    summary = run_tune_in_process(tune_overrides(tmp_path, fer_csv, "search=relu_random", "n_trials=12"), record)
    space = OmegaConf.load(Path(CONF_DIR) / "search" / "relu_random.yaml").space
    study = optuna.load_study(study_name="relu_random", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(seen) == 12 and summary["trials"]["complete"] == 12
    for trial, cfg in zip(study.trials, seen, strict=True):
        assert trial.params.keys() == space.keys()
        for path, value in trial.params.items():
            assert value in space[path].choices
            assert OmegaConf.select(cfg, path) == value  # the value reached the training config
        assert cfg.test is False and cfg.callbacks.model_checkpoint is None  # trials never touch PrivateTest
    # The sampler's seed takes the process id (so processes sharing a study draw apart): 12 draws of 3 choices miss
    # one of them about 2% of the time (seen once, 2026-12-04), but give a single value only with odds of 6 in 10^6.
    assert len({trial.params["model.net.conv_blocks.0.filters"] for trial in study.trials}) >= 2
    assert summary["best_value"] == 0.128


def test_hyperband_prunes_a_crafted_objective() -> None:
    search = OmegaConf.load(Path(CONF_DIR) / "search" / "leaky_hyperband.yaml")
    study = optuna.create_study(direction="maximize", pruner=instantiate(search.pruner),
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        quality = trial.suggest_float("quality", 0.0, 1.0)
        for epoch in range(search.pruner.max_resource):
            trial.report(quality * (epoch + 1) / 10, step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return quality

    study.optimize(objective, n_trials=30)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert min(len(t.intermediate_values) for t in pruned) < search.pruner.max_resource  # stopped early
    assert sum(len(t.intermediate_values) for t in study.trials) < 30 * search.pruner.max_resource


def test_unknown_search_key_fails_before_any_trial(tmp_path: Path, fer_csv: Path) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("tune", overrides=tune_overrides(tmp_path, fer_csv, "search=leaky_hyperband"))
        with open_dict(cfg):
            cfg.space["model.net.width"] = {"choices": [1]}
        with pytest.raises(ValueError, match=r"keys name no value in the training config: model\.net\.width$"):
            tune(cfg, Path(CONF_DIR), run=lambda *args, **kwargs: pytest.fail("a trial ran"))


def tune_command(tmp_path: Path, csv: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "tune.py"), *tune_overrides(tmp_path, csv, *extra)]


def trials_of(tmp_path: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}").get_trials()


def test_killed_study_resumes_to_the_requested_trials(tmp_path: Path, fer_csv: Path) -> None:
    command = tune_command(tmp_path, fer_csv, "search=leaky_hyperband", "n_trials=3", "heartbeat_interval=1")
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            states = [t.state for t in trials_of(tmp_path, "leaky_hyperband")]
        except (KeyError, ValueError, optuna.exceptions.StorageInternalError):
            states = []
        if len(states) >= 2 and states[-1] == TrialState.RUNNING:
            break
        time.sleep(0.2)
    time.sleep(0.5)  # the trial's first heartbeat: a trial killed before it has none and is never found stale
    assert process.poll() is None, "tune.py ended before it could be killed mid-trial"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert [t.state for t in trials_of(tmp_path, "leaky_hyperband")][-1] == TrialState.RUNNING

    time.sleep(2.5)  # past the heartbeat grace period: the killed trial is now stale
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    states = [t.state for t in trials_of(tmp_path, "leaky_hyperband")]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 3
    assert states.count(TrialState.FAIL) == 1 and TrialState.RUNNING not in states
    study_dir = tmp_path / "study"
    assert (study_dir / "trials.csv").is_file() and (study_dir / "best.json").is_file()
    assert list((study_dir / "trial_0000" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.filterwarnings("ignore:Some regimes for parameter")  # Optuna's importances from 2 trials: inaccurate
def test_a_process_stops_when_the_last_trial_wanted_is_running_in_another(tmp_path: Path, fer_csv: Path) -> None:
    """Two processes share a study of 2 trials: while this one runs trial 0, the other starts trial 1, so this one
    starts no third trial; it waits for the other's to finish, and its report counts both."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    calls = []

    def another_process_starts_a_trial(cfg: DictConfig, extra_callbacks: list) -> RunSummary:
        calls.append(cfg)
        other = optuna.load_study(study_name="relu_random", storage=storage)
        trial = other.ask()  # RUNNING, as in a live process, for a second
        threading.Timer(1.0, other.tell, (trial, 0.4)).start()
        return finished(0.5)

    summary = run_tune_in_process(tune_overrides(tmp_path, fer_csv, "search=relu_random", "n_trials=2",
                                                 "heartbeat_interval=1"), another_process_starts_a_trial)
    assert len(calls) == 1
    assert summary["trials"]["complete"] == 2 and summary["trials"]["running"] == 0


def test_exported_best_config_trains_from_its_study_dir(tmp_path: Path, fer_csv: Path) -> None:
    overrides = [o for o in tune_overrides(tmp_path, fer_csv, "search=leaky_hyperband", "n_trials=2")
                 if not o.startswith("study_dir=")]  # the default: <paths.log_dir>/optuna/<study>
    summary = run_tune_in_process(overrides, run=lambda cfg, extra_callbacks: finished(
        cfg.model.net.conv_blocks[0].dropout))
    study_dir = tmp_path / "outputs" / "optuna" / "leaky_hyperband"
    assert Path(summary["exported_model"]) == study_dir / "model" / "tuned" / "leaky_hyperband.yaml"
    assert (study_dir / "param_importances.png").is_file()  # two complete trials, with different scores
    assert not list(Path(CONF_DIR).glob("model/tuned*"))  # nothing written into the source tree
    best = optuna.load_study(study_name="leaky_hyperband", storage=f"sqlite:///{tmp_path / 'optuna.db'}").best_trial
    argv = tuned_model_searchpath([f"paths.log_dir={tmp_path / 'outputs'}", "model=tuned/leaky_hyperband"])
    assert argv[-1] == f"hydra.searchpath=[file://{study_dir.resolve()}]"
    cfg = compose_train([*argv, *tiny_run_overrides(fer_csv, tmp_path / "run", tmp_path / "cache")])
    assert cfg.model.net.conv_blocks[0].dropout == best.params["model.net.conv_blocks.0.dropout"]
    assert cfg.model.optimizer._target_ == "torch.optim.AdamW"  # the recipe groups still apply on top
    assert np.isfinite(train(cfg).test_acc)
    # The experiment export brings the search's own recipe groups along (the study's Adam + L2 in the loss).
    argv = tuned_model_searchpath([f"paths.log_dir={tmp_path / 'outputs'}", "experiment=tuned/leaky_hyperband"])
    cfg = compose_train(argv)
    assert cfg.model.optimizer._target_ == "torch.optim.Adam" and cfg.model.keras_l2
    assert cfg.model.net.conv_blocks[0].dropout == best.params["model.net.conv_blocks.0.dropout"]
    assert cfg.model.net.activation == "leaky_relu"


def test_the_recipe_search_exports_an_experiment_with_data_and_trainer_values(tmp_path: Path, fer_csv: Path) -> None:
    overrides = [o for o in tune_overrides(tmp_path, fer_csv, "search=relu_recipe", "n_trials=3")
                 if not o.startswith("study_dir=")]
    summary = run_tune_in_process(overrides, run=lambda cfg, extra_callbacks: finished(cfg.model.label_smoothing))
    best = summary["best_params"]
    assert summary["train_with"] == ["experiment=tuned/relu_recipe"]
    cfg = compose_train(tuned_model_searchpath([f"paths.log_dir={tmp_path / 'outputs'}", *summary["train_with"]]))
    for path, value in best.items():
        assert OmegaConf.select(cfg, path) == value, path
    assert cfg.task_name == "best" and cfg.model.scheduler._target_.endswith("OneCycleLR")  # on top of `best`
    assert cfg.model.net.conv_padding == "valid"  # still the study's own net


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path: Path, fer_csv: Path) -> None:
    calls = []

    def sometimes_fails(cfg: DictConfig, extra_callbacks: list) -> RunSummary:
        calls.append(cfg)
        if len(calls) == 1:
            raise RuntimeError("out of memory (simulated)")
        return finished(float("nan") if len(calls) == 2 else 0.5)

    summary = run_tune_in_process(tune_overrides(tmp_path, fer_csv, "search=relu_random", "n_trials=3"),
                                  sometimes_fails)
    assert summary["trials"]["fail"] == 2 and summary["trials"]["complete"] == 1
    assert summary["failures"] == {0: "RuntimeError: out of memory (simulated)",
                                   1: "val/acc_best is not finite (did the loss diverge?)"}
    # one complete trial: its history is drawn, but no importances (Optuna would draw every bar alike)
    study_dir = tmp_path / "study"
    assert (study_dir / "optimization_history.png").is_file()
    assert not (study_dir / "param_importances.png").exists()


@pytest.mark.parametrize("stale", ["while this one trains", "after this one stopped"])
def test_a_trial_a_killed_process_left_is_failed_and_run_again(tmp_path: Path, fer_csv: Path, stale: str) -> None:
    """The other process starts the study's last trial, beats once and goes silent (killed). Found stale while this
    process still trains, it stops counting; found stale after this one stopped starting trials (the two made the
    study's 2), this one has waited for it. Either way this one runs the trial the study still wants."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1)
    calls = []

    def another_process_dies_in_a_trial(cfg: DictConfig, extra_callbacks: list) -> RunSummary:
        calls.append(cfg)
        if len(calls) == 1:
            with warnings.catch_warnings():  # Optuna's note that heartbeats are meant for optimize(), as there
                warnings.simplefilter("ignore", UserWarning)
                killed = optuna.load_study(study_name="relu_random", storage=storage).ask()
            storage.record_heartbeat(killed._trial_id)
            if stale == "while this one trains":
                time.sleep(3.2)  # past the 2-s grace period on SQLite's clock, which counts whole seconds
        return finished(0.5)

    overrides = tune_overrides(tmp_path, fer_csv, "search=relu_random", "n_trials=2", "heartbeat_interval=1")
    summary = run_tune_in_process(overrides, another_process_dies_in_a_trial)
    assert len(calls) == 2
    assert summary["trials"]["complete"] == 2 and summary["trials"]["fail"] == 1 and summary["trials"]["running"] == 0


def test_a_plot_warning_other_than_equal_importances_reaches_the_user(tmp_path: Path, monkeypatch) -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.01}, value=0.5,
                                              distributions={"lr": optuna.distributions.FloatDistribution(0, 1)}))
    from optuna.visualization import matplotlib as plots
    draw_history = plots.plot_optimization_history

    def history_with_a_warning(shown: optuna.Study) -> Any:
        warnings.warn("the history's own warning", UserWarning, stacklevel=1)
        return draw_history(shown)

    monkeypatch.setattr(plots, "plot_optimization_history", history_with_a_warning)
    with pytest.warns(UserWarning, match="the history's own warning"):
        _save_plots(study, tmp_path)
    assert (tmp_path / "optimization_history.png").is_file()
    assert not (tmp_path / "param_importances.png").exists()  # one trial: every bar alike, left out


def test_tuning_l2_without_the_l2_term_is_refused(tmp_path: Path, fer_csv: Path) -> None:
    overrides = tune_overrides(tmp_path, fer_csv, "search=leaky_hyperband", 'train_overrides=["optimizer=adamw"]')
    with pytest.raises(ValueError, match=r"tunes L2 strengths but model\.keras_l2 is false"):
        run_tune_in_process(overrides, run=lambda *args, **kwargs: pytest.fail("a trial ran"))


def test_a_diverging_trial_fails_naming_the_step_and_the_study_goes_on(tmp_path: Path, fer_csv: Path) -> None:
    diverges = 'train_overrides=["optimizer=adam","scheduler=none","model.optimizer.lr=1e30"]'
    summary = run_tune_in_process(tune_overrides(tmp_path, fer_csv, "search=leaky_hyperband", "n_trials=2", diverges))
    assert summary["trials"]["fail"] == 2
    assert all(reason.startswith("NonFiniteLossError: training loss is nan at step")
               for reason in summary["failures"].values()), summary["failures"]
    assert not list((tmp_path / "study").glob("*.png"))  # no trial finished: nothing to draw


def test_every_net_the_relu_search_can_draw_fits_a_face() -> None:
    """The study's 'valid' padding shrinks faces at every conv: no choice in the space may shrink one to nothing."""
    search = compose_config("tune", ["search=relu_random"])
    kernel_space = {path: spec.choices for path, spec in search.space.items() if ".kernel_size." in path}
    base = compose_config("train", ["model=relu"])
    for values in itertools.product(*kernel_space.values()):
        cfg = base.copy()
        for path, value in zip(kernel_space, values, strict=True):
            OmegaConf.update(cfg, path, value, merge=False)
        assert instantiate(cfg.model.net).eval()(torch.zeros(1, 1, 48, 48)).shape == (1, 7)


def test_a_storage_url_that_cannot_be_opened_is_one_line_and_passwords_stay_out_of_reports(
        tmp_path: Path, fer_csv: Path) -> None:
    overrides = [o for o in tune_overrides(tmp_path, fer_csv) if not o.startswith("storage=")]
    with pytest.raises(FerError, match=r"^storage=foo://user:\*\*\*@host/db: cannot open it \(Can't load plugin"):
        run_tune_in_process([*overrides, "storage=foo://user:secret@host/db"],
                            run=lambda *args, **kwargs: pytest.fail("a trial ran"))
    assert shown_url("postgresql+psycopg://user:secret@db-host/optuna") == "postgresql+psycopg://user:***@db-host/optuna"
    assert shown_url("sqlite:///outputs/optuna/fer.db") == "sqlite:///outputs/optuna/fer.db"
