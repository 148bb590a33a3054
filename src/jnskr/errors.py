"""The project's own error types.

`JnskrError` is a *user* error: bad input, bad config, a missing file.  The CLI prints its
message as one line and exits with code 2; library callers can catch it.
"""

from __future__ import annotations


class JnskrError(Exception):
    """A user-facing error whose message is one clear line."""


class DataError(JnskrError):
    """Malformed or missing data.  The message names the file, the line (when known) and the problem."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.problem = message


class ConfigError(JnskrError):
    """An invalid configuration (unknown key, wrong type, bad value)."""
