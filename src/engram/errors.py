"""Errors a user can cause: each names the field at fault and how to fix it."""

from __future__ import annotations


class EngramError(Exception):
    """Base class for every error Engram raises on purpose."""


class InvalidInput(EngramError, ValueError):
    """Bad input: names the field, what is wrong, and the fix."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"{field}: {problem}; {fix}")


class NotFound(EngramError, LookupError):
    """No live memory has this id (it never existed or was forgotten)."""

    def __init__(self, memory_id: str) -> None:
        self.memory_id = memory_id
        super().__init__(f"id: no memory {memory_id!r}; list ids with `engram list`")


class StoreError(EngramError):
    """The store cannot be used as it is (newer schema, broken chain, bad import)."""


class ReadOnly(StoreError):
    """The store can be read but not written (a read-only mount, no permission)."""
