"""``tune(cfg)``: an Optuna study over train.py's config, persistent, resumable and shareable between processes.

Each trial composes conf/train.yaml with the search's overrides, writes the trial's values into the config at
the paths the search space names, and calls the same ``train()`` with a pruning callback on ``val/acc``.
Trials fit on Training and validate on PublicTest; they never run the PrivateTest pass.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
import optuna
import sqlalchemy
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError
from fer_lightning.training.run_dir import RunSummary
from fer_lightning.training.train import train
from fer_lightning.tuning.exported_models import EXPORTED_EXPERIMENT_DIR, EXPORTED_MODEL_DIR
from fer_lightning.tuning.trial_config import checked_base_config, trial_config

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MONITOR = "val/acc"
WAIT_POLL_SECONDS = 5  # how often a process with no trial left to start looks whether the others' have ended


def suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    """One value from a YAML spec: ``{choices: [...]}``, or ``{low, high}`` with optional ``log`` and ``int``."""
    if "choices" in spec:
        return trial.suggest_categorical(name, list(spec["choices"]))
    if {"low", "high"} <= spec.keys():
        kind = trial.suggest_int if spec.get("int", False) else trial.suggest_float
        return kind(name, spec["low"], spec["high"], log=spec.get("log", False))
    raise ValueError(f"search space entry {name!r}: expected 'choices' or 'low' and 'high', got {sorted(spec)}")


def storage_for(url: str, heartbeat_interval: int) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats, so a trial whose process was killed is marked FAIL rather than left RUNNING;
    FerError where SQLAlchemy cannot open the URL (an unknown scheme, a missing driver, a server not answering)."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes share one file
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                          grace_period=2 * heartbeat_interval)
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise FerError(f"storage={shown_url(url)}: cannot open it ({str(err).splitlines()[0]}); expected an "
                       "SQLAlchemy URL such as sqlite:///outputs/optuna/fer.db or "
                       "postgresql+psycopg://user:password@host/db") from err


def shown_url(url: str) -> str:
    """The storage URL as logs and reports show it, its password masked: several machines' workers share a
    database server's URL, and the study's files travel further than its config."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def make_objective(cfg: DictConfig, study_dir: Path,
                   run: Callable[..., RunSummary] = train) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        params = {path: suggest(trial, path, dict(spec)) for path, spec in cfg.space.items()}
        trial_dir = study_dir / f"trial_{trial.number:04d}"
        trial.set_user_attr("dir", str(trial_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who ran it, in a shared study
        try:
            summary = run(trial_config(cfg, params, trial_dir),
                          extra_callbacks=[PyTorchLightningPruningCallback(trial, monitor=MONITOR)])
        except optuna.TrialPruned:
            raise
        except Exception as err:  # recorded on the trial; the study goes on (optimize(catch=...))
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
            raise
        value = summary.val_acc_best
        if not math.isfinite(value):
            trial.set_user_attr("fail_reason", "val/acc_best is not finite (did the loss diverge?)")
            raise ValueError(f"trial {trial.number}: val/acc_best is {value}")
        return value

    return objective


def _count_finished(study: optuna.Study) -> int:
    return sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))


def _save_plots(study: optuna.Study, study_dir: Path) -> None:
    """Optuna's own matplotlib figures; a plot that needs more finished trials than there are is skipped.

    So is an importance chart Optuna draws with every bar alike because too few trials tell the parameters apart
    (it warns "importances will be equal"; on 1 or 2 complete trials): it would look like a finding and say nothing.
    """
    from optuna.visualization import matplotlib as plots

    for name, plot in (("optimization_history", plots.plot_optimization_history),
                       ("param_importances", plots.plot_param_importances),
                       ("intermediate_values", plots.plot_intermediate_values)):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                plot(study)
        except (ValueError, RuntimeError) as err:
            log.warning("No %s plot: %s", name, err)
            continue
        figure = plt.gcf()  # each of optuna's plots draws on a new pyplot figure (or grid of axes)
        equal = [w for w in caught if "importances will be equal" in str(w.message)]
        for other in (w for w in caught if w not in equal):
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)  # as if not caught
        if equal:
            log.warning("No %s plot: %s", name, equal[0].message)
        else:
            figure.set_size_inches(10, 6)
            figure.savefig(study_dir / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)


def export_best_model(cfg: DictConfig, best: optuna.trial.FrozenTrial, trial_cfg: DictConfig, conf_dir: Path,
                      study_dir: Path) -> Path:
    """The best trial's ``model`` node, limited to the keys the base model config owns, as a model config in the
    study dir, where ``fer-train model=tuned/<study>`` finds it."""
    owned = [str(key) for key in OmegaConf.load(conf_dir / "model" / f"{cfg.model}.yaml")]
    tuned = cast(dict[str, Any], OmegaConf.to_container(trial_cfg.model, resolve=True))
    model = {key: tuned[key] for key in owned}
    elsewhere = [path for path in best.params if path.split(".")[:2] not in (["model", key] for key in owned)]
    if elsewhere:
        log.warning("Not part of the exported model config (experiment=tuned/%s has them): %s", cfg.study_name,
                    ", ".join(f"{path}={best.params[path]}" for path in elsewhere))
    path = study_dir / EXPORTED_MODEL_DIR / f"{cfg.study_name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Written by tune.py: study {cfg.study_name}, trial {best.number}, val/acc_best {best.value:.4f} "
              f"on PublicTest.\n# Train it with the search's recipe: python train.py model=tuned/{cfg.study_name} "
              f"{' '.join(recipe_groups(cfg))}\n")
    path.write_text(header + OmegaConf.to_yaml(OmegaConf.create(model)))
    return path


def export_best_experiment(cfg: DictConfig, best: optuna.trial.FrozenTrial, trial_cfg: DictConfig,
                           study_dir: Path) -> Path:
    """Everything the search tuned, as an experiment on top of its base model and recipe groups:
    ``fer-train experiment=tuned/<study>`` trains the best trial's configuration, data and trainer values too.

    A value inside a list (a conv block's filters) is written as the whole list, since Hydra replaces lists
    rather than merging them. The search's dotted ``train_overrides`` (e.g. ``trainer.max_epochs=10`` for every
    trial) are trial settings, not part of the result, and are left out."""
    groups = [override.partition("=") for override in recipe_groups(cfg)]
    defaults: list[Any] = [f"/experiment/{value}" for group, _, value in groups if group == "experiment"]
    defaults += [{"override /model": cfg.model}]  # overrides come after what they override, Hydra's rule
    defaults += [{f"override /{group}": value} for group, _, value in groups if group != "experiment"]
    values = OmegaConf.create({"defaults": [*defaults, "_self_"]})
    for path in best.params:
        node = _outermost_list(trial_cfg, path)
        value = OmegaConf.select(trial_cfg, node)
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        OmegaConf.update(values, node, value, force_add=True)
    yaml_path = study_dir / EXPORTED_EXPERIMENT_DIR / f"{cfg.study_name}.yaml"
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    yaml_path.write_text(f"# @package _global_\n# Written by tune.py: study {cfg.study_name}, trial {best.number}, "
                         f"val/acc_best {best.value:.4f} on PublicTest.\n# python train.py experiment=tuned/"
                         f"{cfg.study_name}\n{OmegaConf.to_yaml(values)}")
    return yaml_path


def _outermost_list(config: DictConfig, path: str) -> str:
    """``path`` cut at the first list it goes through (``model.net.conv_blocks.0.l2`` -> ``model.net.conv_blocks``)."""
    keys = path.split(".")
    for end in range(1, len(keys)):
        if isinstance(OmegaConf.select(config, ".".join(keys[:end])), ListConfig):
            return ".".join(keys[:end])
    return path


def recipe_groups(cfg: DictConfig) -> list[str]:
    """The config groups the search trains with (e.g. ``optimizer=adam``), which its exported model needs too."""
    return [o for o in cfg.train_overrides if "." not in o.split("=")[0]]


def tune(cfg: DictConfig, conf_dir: Path, run: Callable[..., RunSummary] = train) -> dict[str, Any]:
    """Create or resume the study, run trials until ``n_trials`` have finished, then write its report."""
    study_dir = Path(cfg.study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    base = checked_base_config(cfg)
    load_fer2013(base.data.csv_path, base.paths.cache_dir, base.data.bad_rows)  # bad data fails before any trial
    storage = storage_for(cfg.storage, cfg.heartbeat_interval)
    existing = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}.get(cfg.study_name, 0)
    # Each process draws its own sampler stream, so processes sharing a study do not repeat each other.
    seed = int(np.random.SeedSequence([cfg.seed, existing, os.getpid()]).generate_state(1)[0])
    study = optuna.create_study(study_name=cfg.study_name, storage=storage, direction="maximize",
                                sampler=instantiate(cfg.sampler, seed=seed), pruner=instantiate(cfg.pruner),
                                load_if_exists=True)
    optuna.storages.fail_stale_trials(study)
    done = _count_finished(study)
    log.info("Study %s in %s: %d trials finished, %d to run (sampler seed %d)", cfg.study_name, shown_url(cfg.storage),
             done, max(cfg.n_trials - done, 0), seed)
    _finish(study, make_objective(cfg, study_dir, run), cfg)
    return write_study_report(cfg, study, conf_dir, study_dir, base.trainer.max_epochs)


def _finish(study: optuna.Study, objective: Callable[[optuna.Trial], float], cfg: DictConfig) -> None:
    """Run trials until ``n_trials`` have finished, with any other processes sharing the study.

    This process starts no trial while the finished ones and those running elsewhere make ``n_trials`` (``_stop_at``),
    but it does not leave while others run: a worker killed in a trial leaves it running until its heartbeat is stale,
    and the study would end a trial short. So it waits, looking every few seconds, and runs again the trials that
    killed workers left undone; not those that failed on an error of their own (``fail_reason``), which would fail
    again. With a ``timeout`` it waits no longer than that. A trial whose process was killed before its first
    heartbeat (milliseconds after it starts) is never found stale and keeps it waiting.
    """
    deadline = None if cfg.timeout is None else time.monotonic() + cfg.timeout
    killed_before = _killed(study.get_trials(deepcopy=False))
    to_run = cfg.n_trials - _count_finished(study)
    while to_run > 0 and (deadline is None or time.monotonic() < deadline):
        left = None if deadline is None else deadline - time.monotonic()
        study.optimize(objective, n_trials=to_run, timeout=left, catch=(Exception,),
                       callbacks=[_stop_at(cfg.n_trials)], gc_after_trial=True)
        trials = _after_other_processes(study, cfg.heartbeat_interval, deadline)
        killed = _killed(trials)
        to_run = min(cfg.n_trials - sum(t.state in FINISHED for t in trials), killed - killed_before)
        killed_before = killed


def _killed(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials failed by a stale heartbeat, told from those that failed on an error of their own by the
    ``fail_reason`` the objective records for those."""
    return sum(t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs for t in trials)


def _after_other_processes(study: optuna.Study, heartbeat_interval: int,
                           deadline: float | None) -> list[optuna.trial.FrozenTrial]:
    """The study's trials once none runs (or at the deadline), killed processes' trials failed on the way."""
    told = False
    while True:
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if not running or (deadline is not None and time.monotonic() >= deadline):
            return trials
        if not told:
            log.info("Waiting for %d trials running in other processes to finish or be found stale", running)
            told = True
        time.sleep(min(heartbeat_interval, WAIT_POLL_SECONDS))


def _stop_at(n_trials: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback that stops this process once the finished trials and those running in other processes make
    ``n_trials``. Counting the finished ones alone, each of w processes sharing the study could start one more, up
    to w - 1 extra. A killed process's trial is failed first once its heartbeat is stale, so it stops counting."""
    enough = optuna.study.MaxTrialsCallback(n_trials, (*FINISHED, TrialState.RUNNING))

    def stop_when_enough(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        optuna.storages.fail_stale_trials(study)
        enough(study, trial)

    return stop_when_enough


def write_study_report(cfg: DictConfig, study: optuna.Study, conf_dir: Path, study_dir: Path,
                       max_epochs: int) -> dict[str, Any]:
    """trials.csv, best.json, the plots, and the best trial as <study dir>/model/tuned/<study>.yaml."""
    trials = study.get_trials(deepcopy=False)
    study.trials_dataframe().to_csv(study_dir / "trials.csv", index=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    finished = [t for t in trials if t.state in FINISHED]
    summary: dict[str, Any] = {
        "study": cfg.study_name, "storage": shown_url(cfg.storage), "trials": counts,
        "epochs_run": sum(len(t.intermediate_values) for t in finished),
        "epochs_without_pruning": len(finished) * max_epochs,
        "failures": {t.number: t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL},
    }
    if counts["complete"]:
        best = study.best_trial
        trial_cfg = trial_config(cfg, best.params, Path(best.user_attrs.get("dir", ".")))  # the best trial's config
        export = export_best_model(cfg, best, trial_cfg, conf_dir, study_dir)
        experiment = export_best_experiment(cfg, best, trial_cfg, study_dir)
        summary |= {"best_trial": best.number, "best_value": best.value, "best_params": best.params,
                    "exported_model": str(export), "exported_experiment": str(experiment),
                    "train_with": [f"experiment=tuned/{cfg.study_name}"]}
        log.info("Best trial %d: val/acc_best %.4f with %s; written to %s", best.number, best.value, best.params,
                 export)
    if finished:
        _save_plots(study, study_dir)
    else:
        log.warning("No plots: no trial finished")
    (study_dir / "best.json").write_text(json.dumps(summary, indent=2))
    log.info("Trials: %s; %d epochs run against %d without pruning; report in %s", counts,
             summary["epochs_run"], summary["epochs_without_pruning"], study_dir)
    return summary
