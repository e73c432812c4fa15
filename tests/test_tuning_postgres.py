"""Tuning workers on a real PostgreSQL server: two tune.py processes share one study, a killed one's trial is
marked failed by the heartbeat while the other goes on.

The server is a throwaway one started here (initdb in a temporary folder, a free port on 127.0.0.1). The test
skips, saying why, where PostgreSQL's programs (Debian's ``postgresql`` package; ``.ci/run`` installs it) or the
psycopg driver (``pip install -e ".[postgres]"``) are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_tuning import tune_command

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def postgres_program(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def as_postgres_user(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the package's ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql; .ci/run does)")
    pytest.importorskip("psycopg", reason="the psycopg driver is missing: pip install -e '.[postgres]'")
    # Not under tmp_path: pytest's folders are closed to other users, and the server runs as ``postgres``.
    data = Path(tempfile.mkdtemp(prefix="fer-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(as_postgres_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]), check=True,
                   capture_output=True, timeout=120)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"
    subprocess.run(as_postgres_user([pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(data / "log"),
                                     "start"]), check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_share_a_postgresql_study_and_a_killed_ones_trial_fails(
        postgres_url: str, tmp_path: Path, fer_csv: Path) -> None:
    def command(*extra: str) -> list[str]:
        return [*tune_command(tmp_path, fer_csv, "search=leaky_hyperband", *extra), f"storage={postgres_url}"]

    create = subprocess.run(command("n_trials=0"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert create.returncode == 0, create.stderr[-2000:]
    storage = optuna.storages.RDBStorage(postgres_url)  # one connection pool for all the polling below

    def trials() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="leaky_hyperband", storage=storage).get_trials()

    work = command("n_trials=5", "heartbeat_interval=1")
    doomed, survivor = (subprocess.Popen(work, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True) for _ in range(2))

    def doomed_trials() -> list[optuna.trial.FrozenTrial]:
        return [t for t in trials() if t.user_attrs.get("worker", "").endswith(f":{doomed.pid}")]

    def running_after_one_finished() -> int | None:
        mine = doomed_trials()
        finished_one = any(t.state in FINISHED for t in mine)
        return mine[-1].number if finished_one and mine[-1].state == TrialState.RUNNING else None

    # Killed inside a trial past its first heartbeat: the same trial still running half a second after it was seen
    # (a short trial can end within that half second, and a worker killed between trials leaves none to fail).
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and doomed.poll() is None:
        seen = running_after_one_finished()
        if seen is not None:
            time.sleep(0.5)
            if running_after_one_finished() == seen:
                break
        time.sleep(0.1)
    assert doomed.poll() is None, f"the worker to kill ended first: {doomed.stderr.read().decode()[-3000:]}"
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    assert survivor.wait(timeout=300) == 0, survivor.stderr.read()[-2000:]

    recorded = trials()
    assert sorted(t.number for t in recorded) == list(range(len(recorded)))  # each trial recorded once
    assert sum(t.state in FINISHED for t in recorded) == 5 and TrialState.RUNNING not in {t.state for t in recorded}
    [failed] = [t for t in recorded if t.state == TrialState.FAIL]  # the killed worker's trial, by the heartbeat
    assert failed in doomed_trials()
    assert len({t.user_attrs["worker"] for t in recorded}) == 2
    # None run twice: every trial has its own run dir and its own parameters.
    assert len({t.user_attrs["dir"] for t in recorded}) == len(recorded)
    finished = [t for t in recorded if t.state in FINISHED]
    assert len({tuple(sorted(t.params.items())) for t in finished}) == len(finished)
    # The pruner judges a trial against the intermediate values of every trial in the shared database: the
    # killed worker's finished trials left theirs there, and the survivor went on after them.
    killed_finished = [t for t in doomed_trials() if t.state in FINISHED]
    assert all(t.intermediate_values for t in killed_finished)
    assert max(t.number for t in finished) > max(t.number for t in killed_finished)
