"""``fer-study``: the Keras study's two searches at their own size, then their best nets, stacked, tested once.

Each stage is the project's own command in processes of its own, so a stage's GPU memory is freed when it ends
and several trials can share one GPU: ``workers`` tune processes per search, both searches at once, every process
of a search on one shared study database (Optuna's parallelism across processes). Then each search's exported
best model is trained with the search's recipe to the end (both at once), the two are stacked, and PrivateTest
is scored by those three runs only. Trials validate on PublicTest and never test.

Everything lives in the study's own dir, so running ``fer-study`` again on that dir (``hydra.run.dir=<it>``)
continues after a crash: the searches resume from their database, a final run with a summary is kept and one
with a last checkpoint resumes.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from fer_lightning import CONF_DIR
from fer_lightning.data.audit import DataAudit, audit_data
from fer_lightning.data.csv_reader import cache_file, load_fer2013
from fer_lightning.errors import ConfigError, FerError, as_list, check_number, check_whole_number
from fer_lightning.training.run_dir import RunDir
from fer_lightning.tuning.exported_models import STUDIES_DIR
from fer_lightning.tuning.tune import FINISHED

log = logging.getLogger(__name__)
SEARCH_CONFIGS = Path(CONF_DIR) / "search"


@dataclass
class Stage:
    """A command of this project started in its own process, logging to its own file."""

    name: str
    module: str  # fer_lightning.cli.<module>, run with ``python -m``
    args: list[str]
    log_file: Path

    def start(self) -> subprocess.Popen:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as out:
            return subprocess.Popen([sys.executable, "-m", f"fer_lightning.cli.{self.module}", *self.args],
                                    stdout=out, stderr=subprocess.STDOUT)


def _hydra_list(values: Sequence[str]) -> str:
    """A list override Hydra reads back as the same strings (each quoted, so '=' and ',' inside are kept)."""
    return "[" + ",".join(json.dumps(str(value)) for value in values) + "]"


def run_together(stages: Sequence[Stage], progress: Any = None, poll_seconds: float = 10.0) -> None:
    """Start every stage, wait for all; any failure is one error naming its log's last line.

    ``progress()`` is called every ``poll_seconds`` while they run, to log how far they are.
    """
    processes = [(stage, stage.start()) for stage in stages]
    while any(process.poll() is None for _, process in processes):
        time.sleep(poll_seconds)
        if progress is not None and any(process.poll() is None for _, process in processes):
            progress()
    failed = [(stage, process.returncode) for stage, process in processes if process.returncode != 0]
    if failed:
        stage, code = failed[0]
        lines = [line for line in stage.log_file.read_text(errors="replace").splitlines()
                 if line.strip() and "HYDRA_FULL_ERROR" not in line] or ["no output"]
        raise FerError(f"fer-study: {stage.name} exited with {code}: {lines[-1].strip()} (log: {stage.log_file})")


def _finished_trials(storage: str, study_name: str) -> int:
    """Complete and pruned trials of the study so far (0 before it exists)."""
    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return 0
    return sum(trial.state in FINISHED for trial in trials)


def full_study(cfg: DictConfig) -> dict[str, Any]:
    """Searches, final runs, stack; writes study.json in the study dir and returns it."""
    check_whole_number("workers", cfg.workers, "processes per search")
    check_number("poll_seconds", cfg.poll_seconds, above=0, why="between progress lines")
    cfg.searches = checked_searches(cfg.searches)
    out = Path(cfg.paths.output_dir).resolve()
    (out / STUDIES_DIR).mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / STUDIES_DIR / 'studies.db'}"
    common = [f"paths.log_dir={out}", f"paths.cache_dir={Path(cfg.paths.cache_dir).resolve()}"]
    timings: dict[str, float] = {}

    start = time.perf_counter()
    audit = _parse_then_audit(compose(config_name="train", overrides=[*common, *cfg.final_args]).data)
    _search(cfg, out, storage, common)
    timings["searches"] = time.perf_counter() - start
    start = time.perf_counter()
    audit.result()
    timings["audit_after_searches"] = time.perf_counter() - start  # what the final runs waited for it
    reports = {name: json.loads((out / STUDIES_DIR / name / "best.json").read_text())
               for name in cfg.searches}

    start = time.perf_counter()
    finals = {name: out / "final" / name for name in cfg.searches}
    trained = _train_finals(cfg, reports, finals, common, out)
    timings["final_runs"] = time.perf_counter() - start

    start = time.perf_counter()
    stack = _stack(cfg, finals, trained, common, out) if len(finals) > 1 else None  # one search: nothing to stack
    timings["stack"] = time.perf_counter() - start

    summary: dict[str, Any] = {
        "searches": {name: _search_row(report) for name, report in reports.items()},
        "final_runs": {name: _final_summary(path) for name, path in finals.items()},
        "stack": stack, "seconds": timings, "config": OmegaConf.to_container(cfg, resolve=True),
    }
    (out / "study.json").write_text(json.dumps(summary, indent=2))
    for name, run in summary["final_runs"].items():
        log.info("%s: best trial val/acc %.4f; trained to the end, PrivateTest %.4f", name,
                 reports[name].get("best_value", float("nan")), run["test/acc"])
    if stack:
        log.info("Stack (%s): PrivateTest %.4f", stack["meta"], stack["test/acc"])
    log.info("%.0f s in all; study dir %s", sum(timings.values()), out)
    return summary


def _stack(cfg: DictConfig, finals: dict[str, Path], trained: bool, common: list[str], out: Path) -> dict[str, Any]:
    """The final runs stacked (again, where any of them trained since), and the stack's report."""
    stack_dir = out / "stack"
    if trained or not (stack_dir / "stack.json").is_file():
        run_together([Stage("stack", "stack", [f"runs={_hydra_list([str(path) for path in finals.values()])}",
                                               *common, *cfg.stack_args, f"hydra.run.dir={stack_dir}"],
                            out / "logs" / "stack.log")], poll_seconds=1.0)
    return json.loads((stack_dir / "stack.json").read_text())


def checked_searches(value: object) -> list[str]:
    """``searches`` as a list of conf/search/ names (one name alone is a list of one), each there, none twice."""
    known = sorted(entry.name.removesuffix(".yaml") for entry in SEARCH_CONFIGS.iterdir()
                   if entry.name.endswith(".yaml"))
    names = as_list("searches", value, "conf/search/ names")
    if not names:
        raise ConfigError(f"searches must name one or more of {', '.join(known)}, e.g. [relu_random]")
    for index, name in enumerate(names):
        if name not in known:
            raise ConfigError(f"searches lists {name!r}, which is no conf/search/ file; known: {', '.join(known)}")
        if name in names[:index]:
            raise ConfigError(f"searches lists {name} twice")
    return names


def _search(cfg: DictConfig, out: Path, storage: str, common: list[str]) -> None:
    """Each search that has fewer finished trials than it wants, ``cfg.workers`` fer-tune processes apiece, all at
    once on the one study database; their progress logged as they run."""
    wanted = {name: compose(config_name="tune", overrides=[f"search={name}", *cfg.search_args.get(name, [])]).n_trials
              for name in cfg.searches}
    to_search = [name for name in cfg.searches if _finished_trials(storage, name) < wanted[name]]
    for name in to_search:  # created here, so that workers starting together do not race to create it
        optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    # Each trial composes its own training config, so the paths go into its train_args too.
    searches = [Stage(f"search {name}, worker {worker}", "tune",
                      [f"search={name}", f"study_name={name}", *cfg.search_args.get(name, []), f"storage={storage}",
                       *common, f"train_args={_hydra_list([*common, *cfg.trial_args])}",
                       f"hydra.run.dir={out / 'logs' / f'{name}_{worker}'}"],
                      out / "logs" / f"{name}_{worker}.log")
                for name in to_search for worker in range(cfg.workers)]
    log.info("Searching: %s, %d worker(s) each, logs in %s", ", ".join(to_search) or "done before", cfg.workers,
             out / "logs")
    run_together(searches, lambda: log.info("Trials finished: %s", "; ".join(
        f"{name} {_finished_trials(storage, name)}/{wanted[name]}" for name in to_search)), cfg.poll_seconds)


def _train_finals(cfg: DictConfig, reports: dict[str, dict[str, Any]], finals: dict[str, Path], common: list[str],
                  out: Path) -> bool:
    """Each search's best config trained to the end in its ``finals`` dir, all at once; whether any had to run
    (a study continued after its final runs had finished trains none)."""
    stages = [_final_stage(name, reports[name], finals[name], common, cfg.final_args, out) for name in cfg.searches
              if not (finals[name] / "summary.json").is_file()]
    log.info("Training the best configs to the end: %s", ", ".join(stage.name for stage in stages) or "done before")
    run_together(stages, poll_seconds=cfg.poll_seconds)
    return bool(stages)


def _parse_then_audit(data: DictConfig) -> Future[DataAudit]:
    """Parse the CSV here, once, before the workers start (each then reads the cache instead of all parsing it at
    once), and audit it in a thread while the searches run: both final runs' PrivateTest reports need the audit
    (two minutes on a 2-core CPU), which they would otherwise each compute after the searches."""
    faces = load_fer2013(data.csv_path, data.cache_dir, data.bad_rows)
    cache = cache_file(data.csv_path, data.cache_dir, data.bad_rows) if data.cache_dir else None
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
    audit = background.submit(audit_data, faces, cache)
    background.shutdown(wait=False)  # the thread ends with the audit; result() is waited on after the searches
    return audit


def _final_stage(name: str, report: dict[str, Any], run_dir: Path, common: list[str], final_args: Sequence[str],
                 out: Path) -> Stage:
    """The search's exported model, trained with the search's own recipe groups, in ``run_dir``."""
    log_file = out / "logs" / f"final_{name}.log"
    if (run_dir / "checkpoints" / "last.ckpt").is_file():  # stopped earlier: continue it
        return Stage(f"final {name} (resumed)", "train", [f"resume={run_dir}"], log_file)
    if "train_with" not in report:
        raise FerError(f"fer-study: search {name} exported no model: no trial completed; see {out / 'logs'}")
    return Stage(f"final {name}", "train", [*report["train_with"], *common, *final_args, f"hydra.run.dir={run_dir}"],
                 log_file)


def _final_summary(run_dir: Path) -> dict[str, Any]:
    summary = RunDir(run_dir).summary()
    if summary is None:
        raise FerError(f"fer-study: {run_dir} has no summary.json although its run exited cleanly")
    return summary.to_json()


def _search_row(report: dict[str, Any]) -> dict[str, Any]:
    trials = report["trials"]
    finished = trials.get("complete", 0) + trials.get("pruned", 0)
    return {"trials": trials, "pruned_share": trials.get("pruned", 0) / finished if finished else None,
            "epochs_run": report["epochs_run"], "epochs_without_pruning": report["epochs_without_pruning"],
            "best_value": report.get("best_value"), "best_params": report.get("best_params")}
