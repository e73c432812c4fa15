"""What every entry point shares: where the configs live, and one-line errors instead of tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fer_lightning.errors import FerError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")  # absolute, so console scripts run from anywhere
T = TypeVar("T")


def exit_on_error(task: Callable[[], T], also: tuple[type[Exception], ...] = ()) -> T:
    """Run an entry point's work; a FerError (or one of ``also``) ends the process with ``error: <message>``."""
    try:
        return task()
    except (FerError, *also) as err:
        sys.exit(f"error: {err}")
