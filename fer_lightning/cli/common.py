"""What every command shares: where the configs live, run dirs named by process, one-line errors for bad input."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning import CONF_DIR
from fer_lightning.errors import FerError

T = TypeVar("T")

# Run dirs are named <date_time>_<process id> (conf/hydra/default.yaml): two runs started in the same second (a
# shell loop with &, tuning workers) would otherwise share a dir, and the second's config would replace the first's.
# Cached in the config, as Hydra's ${now:} is, so a multirun's joblib workers keep the launching process's id.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)


def command_help(config_name: str) -> str:
    """The opening of a command's ``--help``: the comment its YAML starts with (what it does, how it is called), in
    place of Hydra's "<name> is powered by Hydra" (conf/hydra/default.yaml)."""
    lines = Path(CONF_DIR, f"{config_name}.yaml").read_text().splitlines()
    comment = itertools.takewhile(lambda line: line.startswith("#"), lines)
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in comment) + "\n"


OmegaConf.register_new_resolver("command_help", command_help, replace=True)


def exit_on_error(task: Callable[[], T], also: tuple[type[Exception], ...] = ()) -> T:
    """Run a command's work; a FerError (or one of ``also``) ends the process with ``error: <message>``, also where
    Hydra's instantiate raised it, prefixed with the config key it was building."""
    caught: tuple[type[Exception], ...] = (FerError, *also)
    try:
        return task()
    except caught as err:
        sys.exit(f"error: {err}")
    except InstantiationException as err:
        innermost = _innermost(err)
        cause = innermost.__cause__
        if not isinstance(cause, caught):
            raise
        key = next((line.removeprefix("full_key: ") for line in str(innermost).splitlines()
                    if line.startswith("full_key: ")), None)
        named = key is None or str(cause).startswith(key)  # messages from the DataModule name their data.* key
        sys.exit(f"error: {cause}" if named else f"error: {key}: {cause}")


def _innermost(err: InstantiationException) -> InstantiationException:
    """The wrapper nearest the cause, which names the deepest config key (Hydra may wrap once per level)."""
    while isinstance(err.__cause__, InstantiationException):
        err = err.__cause__
    return err


class OutputDirCheck(Callback):
    """Hydra creates the run dir before any of our code runs; try first, so a bad path is one line, not a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_creatable(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_creatable(Path(config.hydra.sweep.dir))


def _exit_unless_creatable(path: Path) -> None:
    """Probe the nearest existing folder on the way to ``path`` with a throw-away subfolder."""
    existing = next(parent for parent in (path.absolute(), *path.absolute().parents) if parent.exists())
    try:
        Path(tempfile.mkdtemp(dir=existing)).rmdir()
    except OSError as err:
        sys.exit(f"error: cannot create the output dir {path}: {existing} does not take new folders "
                 f"({err.strerror or err}); point hydra.run.dir or paths.log_dir at a writable folder")
