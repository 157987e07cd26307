"""The one exception family for bad input and failed work, each naming the file, row or feature."""

from __future__ import annotations

from pathlib import Path


class WanggeError(Exception):
    """Base of every error wangge raises on purpose.

    Parameters
    ----------
    problem
        What is wrong, in words a planner can act on.
    source
        The file (or layer) the problem is in, if any.
    where
        The row, feature or unit inside ``source``, if any.
    """

    #: HTTP status the API maps this error to (api/errors.py reads it, in one place).
    status_code = 400

    def __init__(self, problem: str, source: str | Path | None = None, where: str | None = None):
        self.problem = problem
        self.source = str(source) if source is not None else None
        self.where = where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.where:
            parts.append(self.where)
        prefix = ": ".join(parts)
        return f"{prefix}: {self.problem}" if prefix else self.problem


class InputError(WanggeError):
    """The input cannot be used as it is: missing, empty, truncated, malformed or inconsistent."""

    status_code = 422


class NotFound(WanggeError):
    """A layer, plan, version or unit that does not exist (or a point outside the study area)."""

    status_code = 404


class VersionConflict(WanggeError):
    """A save based on a version that is no longer the plan's latest: never a lost update."""

    status_code = 409


class TooLarge(WanggeError):
    """An upload or a batch above the configured limit."""

    status_code = 413


class Unauthenticated(WanggeError):
    """No credential, or a key that is unknown, revoked or expired (401)."""

    status_code = 401


class Forbidden(WanggeError):
    """A known caller asking for what its role or territorial scope does not allow (403)."""

    status_code = 403
