"""Exceptions users can cause. Each carries a one-line message naming the file, field or model at fault.

The CLI prints ``str(exc)`` and exits non-zero without a traceback. Everything else (bugs) keeps its
traceback.
"""

from __future__ import annotations


class BanditArenaError(Exception):
    """Base class for every error a user can cause (bad file, bad config, unreachable endpoint...)."""

    exit_code = 2

    def __str__(self) -> str:  # always one line
        return " ".join(super().__str__().split())


class ConfigError(BanditArenaError):
    """A recipe or argument is invalid; the message names the file and field."""


class DataError(BanditArenaError):
    """An input data file is malformed; the message names file:line (or the row number)."""


class ModelError(BanditArenaError):
    """A model/backend cannot be used (unknown contestant, missing API key, model fails to load)."""


class EndpointError(ModelError):
    """An endpoint failed after all retries (down, 5xx, timeouts). Battles record it and can be resumed."""


class JudgeError(BanditArenaError):
    """A judge cannot be used or its output cannot be parsed."""


class StoreError(BanditArenaError):
    """The run directory / run.sqlite is unusable (e.g. belongs to a different recipe)."""
