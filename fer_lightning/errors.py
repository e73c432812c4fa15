"""The one base class for problems a user can fix: entry points print its message on one line, no traceback."""

from __future__ import annotations


class FerError(Exception):
    """Bad input or a broken run: the message names the file, row or step and says what was expected."""


class ConfigError(FerError, ValueError):
    """A config value that cannot work: the message names the value and what it takes. Raised while the run is
    being built, before any training, so a typo costs seconds, not a run."""


def check_whole_number(key: str, value: object, of: str = "", least: int = 1) -> None:
    """ConfigError unless ``value`` is a whole number of at least ``least`` (``of``: of what, for the message)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{key} must be a whole number{f' of {of}' if of else ''}, at least {least}; got {value!r}")


def check_number(key: str, value: object, *, above: float | None = None, least: float | None = None,
                 why: str = "") -> None:
    """ConfigError unless ``value`` is a number (not true or false) above ``above`` or at least ``least``; ``why``:
    what the number means, for the message."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or (above is not None and value <= above) or (least is not None and value < least):
        bound = f" above {above:g}" if above is not None else f" of at least {least:g}" if least is not None else ""
        raise ConfigError(f"{key} must be a number{bound}{f' ({why})' if why else ''}, got {value!r}")


def check_switch(key: str, value: object) -> None:
    """ConfigError unless ``value`` is true or false (a typo such as ``yes`` would otherwise count as on)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
