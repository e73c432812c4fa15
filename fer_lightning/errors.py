"""The one base class for problems a user can fix: entry points print its message on one line, no traceback. And
the checks every command puts its settings through before it reads data or loads a model, so that each mistake
reads alike: the key, what it takes, and what it got."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeGuard


class FerError(Exception):
    """Bad input or a broken run: the message names the file, row or step and says what was expected."""


class ConfigError(FerError, ValueError):
    """A config value that cannot work: the message names the value and what it takes. Raised while the run is
    being built, before any training, so a typo costs seconds, not a run."""


def check_whole_number(key: str, value: object, of: str = "", least: int = 1) -> None:
    """ConfigError unless ``value`` is a whole number of at least ``least`` (``of``: of what, for the message)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{key} must be a whole number{f' of {of}' if of else ''}, at least {least}; got {value!r}")


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, and not true or false (which are ints to Python, and a typo's usual result)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_number(key: str, value: object, *, above: float | None = None, least: float | None = None,
                 most: float | None = None, why: str = "") -> None:
    """ConfigError unless ``value`` is a number (not true or false) above ``above``, at least ``least`` and at most
    ``most`` (each where given); ``why``: what the number means, for the message."""
    if (not is_number(value) or (above is not None and value <= above) or (least is not None and value < least)
            or (most is not None and value > most)):
        low = f"above {above:g}" if above is not None else f"at least {least:g}" if least is not None else ""
        high = f"at most {most:g}" if most is not None else ""
        bound = f"from {least:g} to {most:g}" if least is not None and most is not None else \
            " and ".join(part for part in (low, high) if part)
        raise ConfigError(f"{key} must be a number{f' {bound}' if bound else ''}{f' ({why})' if why else ''}, "
                          f"got {value!r}")


def check_switch(key: str, value: object, also: str = "") -> None:
    """ConfigError unless ``value`` is true or false (a typo such as ``yes`` would otherwise count as on); ``also``
    names a word the key takes besides, for the message."""
    if not isinstance(value, bool):
        words = f"true, false or {also}" if also else "true or false"
        raise ConfigError(f"{key} must be {words}, got {value!r}")


def as_list(key: str, value: object, of: str) -> list[str]:
    """``value``, a list of names or paths (``of``: of what, for the message), as a list of strings; one alone, as
    ``key=name`` on a command line gives it, is a list of one. ConfigError for anything else."""
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, Sequence) or not all(isinstance(item, str | Path) for item in items):
        raise ConfigError(f"{key} must be a list of {of} ({key}='[A,B]') or one alone, got {value!r}")
    return [str(item) for item in items]


def check_distinct(key: str, paths: Sequence[Path]) -> None:
    """ConfigError if two of ``paths`` are one file or dir: a run listed twice would count twice."""
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            raise ConfigError(f"{key} names {path} twice; each run may count once")
        seen.add(path.resolve())
