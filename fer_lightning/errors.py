"""The one base class for problems a user can fix: entry points print its message on one line, no traceback."""

from __future__ import annotations


class FerError(Exception):
    """Bad input or a broken run: the message names the file, row or step and says what was expected."""
