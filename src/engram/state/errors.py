"""The errors of saved model state: a state of another model, tokenizer or prefix, a state file
that does not match its checksum, and a save that could not be finished."""

from __future__ import annotations

from engram.errors import InvalidInput, StoreError


class StateMismatch(InvalidInput):
    """A saved state computed by another model, tokenizer, dtype, layout or prefix: never
    restored, since it would give a wrong answer rather than an error."""

    def __init__(self, field: str, session: str, saved: str, current: str) -> None:
        self.saved, self.current = saved, current
        super().__init__(field, f"the saved state of session {session!r} has {field} "
                         f"{_short(saved)}, not {_short(current)}",
                         f"use the {field} it was saved with, or start a new session "
                         "(--session NEW); `engram state show` names it")


class StateCorrupt(StoreError):
    """A state file that is truncated, tampered or missing: refused, never half-used."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"state: {path} {problem}; run `engram state verify`, then "
                         "`engram state gc` to drop what is broken (the session re-prefills)")


class StateNotSaved(StoreError):
    """A save that failed part way (a full disk, say): the session's previous state is kept."""

    def __init__(self, session: str, cause: OSError) -> None:
        self.session = session
        why = cause.strerror or str(cause)
        super().__init__(f"state: session {session!r} could not be saved ({why}); its "
                         "previous state is kept. Free disk space or lower state.max_bytes "
                         "(`engram config set state.max_bytes N`)")


def _short(value: str) -> str:
    """A 64-hex hash shortened for a message; other values as they are."""
    return value[:12] if len(value) == 64 else value
