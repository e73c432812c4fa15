"""The one base class for problems a user can fix: entry points print its message on one line, no traceback."""

from __future__ import annotations


class FerError(Exception):
    """Bad input or a broken run: the message names the file, row or step and says what was expected."""


class ConfigError(FerError, ValueError):
    """A config value that cannot work: the message names the value and what it takes. Raised while the run is
    being built, before any training, so a typo costs seconds, not a run."""
