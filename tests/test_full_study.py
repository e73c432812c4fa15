"""fer-study end to end at a tiny size on the CPU: both searches (one with two worker processes sharing its
study), their best nets trained, stacked, and resumed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import pytest
from conftest import CONF_DIR, ONLY_SOFT_VOTE
from hydra import compose, initialize_config_dir
from optuna.trial import TrialState

from fer_lightning.errors import ConfigError, FerError
from fer_lightning.tuning.full_study import Stage, checked_searches, full_study, run_together

TINY = ["trainer.accelerator=cpu", "trainer.precision=32-true", "fuse_tails=false", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2", "data.batch_size=32", "data.eval_batch_size=64",
        "callbacks.progress_bar=null"]


def _as_list(overrides: list[str]) -> str:
    return "[" + ",".join(f'"{arg}"' for arg in overrides) + "]"


def study_overrides(tmp_path: Path, csv: Path) -> list[str]:
    as_list = _as_list([f"data.csv_path={csv}", *TINY])
    return [f"paths.output_dir={tmp_path / 'study'}", f"paths.cache_dir={tmp_path / 'cache'}",
            '+search_args.relu_random=["n_trials=4"]', '+search_args.leaky_hyperband=["n_trials=2"]',
            f"trial_args={as_list}", f"final_args={as_list}", f"stack_args={_as_list(ONLY_SOFT_VOTE)}",
            "poll_seconds=1", "workers=2"]


def run_study(tmp_path: Path, csv: Path) -> dict:
    """fer-study's own function in this process (its stages are processes of their own either way)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return full_study(compose("study", overrides=study_overrides(tmp_path, csv)))


def test_the_whole_study_runs_small_and_continues_where_it_stopped(tmp_path: Path, fer_csv: Path, caplog,
                                                                    monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="fer_lightning.data.audit"):
        summary = run_study(tmp_path, fer_csv)
    assert not (tmp_path / "outputs").exists()  # trials too keep to the study dir and the cache asked for
    study = tmp_path / "study"
    assert json.loads((study / "study.json").read_text())["stack"] == summary["stack"]
    for name, trials in (("relu_random", 4), ("leaky_hyperband", 2)):
        row = summary["searches"][name]
        # Exactly: a worker starts no trial while the last one wanted runs in the other.
        assert row["trials"]["complete"] + row["trials"]["pruned"] == trials and row["best_params"]
        final = summary["final_runs"][name]
        assert 0 <= final["test/acc"] <= 1 and (study / "final" / name / "logits_test.npz").is_file()
    # Two workers per search, one study: both ran trials, and no trial's values were drawn twice.
    study_db = f"sqlite:///{study / 'optuna' / 'studies.db'}"
    trials = [t for t in optuna.load_study(study_name="relu_random", storage=study_db).get_trials()
              if t.state == TrialState.COMPLETE]
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials) >= 4
    # The final nets are the searches' best: their saved config carries the best trial's values.
    best = summary["searches"]["relu_random"]["best_params"]
    overrides = (study / "final" / "relu_random" / ".hydra" / "config.yaml").read_text()
    assert f"filters: {best['model.net.conv_blocks.0.filters']}" in overrides
    assert summary["stack"]["runs"] == [str(study / "final" / name) for name in ("relu_random", "leaky_hyperband")]
    assert 0 <= summary["stack"]["test/acc"] <= 1 and (study / "stack" / "stack_table.csv").is_file()
    # The data was audited once, by fer-study while the searches ran; the final runs read that audit's cache.
    assert caplog.text.count("Audited") == 1
    assert not any("Audited" in log.read_text() for log in (study / "logs").glob("final_*.log"))

    # Again on the same dir: nothing is trained twice, the same figures come back.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fer_lightning.tuning.full_study"):
        again = run_study(tmp_path, fer_csv)
    assert again["final_runs"] == summary["final_runs"]
    assert "Searching: done before" in caplog.text
    assert "Training the best configs to the end: done before" in caplog.text


def test_a_study_of_one_search_trains_its_best_and_stacks_nothing(tmp_path: Path, fer_csv: Path) -> None:
    one = ["searches=relu_random", 'search_args.relu_random=["n_trials=1"]', "workers=1"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        summary = full_study(compose("study", overrides=[*study_overrides(tmp_path, fer_csv), *one]))
    assert list(summary["final_runs"]) == ["relu_random"] and summary["stack"] is None
    assert not (tmp_path / "study" / "stack").exists()


def test_a_failing_stage_is_one_error_naming_its_log(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "bad.log"
    with pytest.raises(FerError, match=r"fer-study: search nothing exited with 1: .*\(log: .*bad\.log\)"):
        run_together([Stage("search nothing", "tune", ["search=no_such_search"], log_file)], poll_seconds=0.2)


@pytest.mark.parametrize(("override", "error"), [
    ("workers=0", "workers must be a whole number of processes per search, at least 1; got 0"),
    ("searches=[]", "searches must name one or more of fast_cpu_recipe, leaky_hyperband, relu_random, relu_recipe, "
                    "e.g. "),
    ("searches=[relu_randm]", "searches lists 'relu_randm', which is no conf/search/ file; known: fast_cpu_recipe, "),
    ("searches=[relu_random,relu_random]", "searches lists relu_random twice"),
    ("poll_seconds=0", r"poll_seconds must be a number above 0 \(between progress lines\), got 0"),
])
def test_study_knobs_are_checked_before_anything_starts(tmp_path: Path, override: str, error: str) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"), pytest.raises(ConfigError, match=error):
        full_study(compose("study", overrides=[f"paths.output_dir={tmp_path / 'study'}", override]))
    assert not (tmp_path / "study").exists()


def test_one_search_alone_is_a_list_of_one() -> None:
    """``fer-study searches=relu_random`` on the command line is a string, not a list of letters."""
    assert checked_searches("relu_random") == ["relu_random"]
    assert checked_searches(["leaky_hyperband", "relu_random"]) == ["leaky_hyperband", "relu_random"]
