"""Who may do what: the principal a request acts as, and the pure rules of reach. No I/O.

A key belongs to one user (or agent) and reaches its memories. Another user's memory is
readable only when it is `public`, or `shared` with the reader (`shared_with` names it).
Writing to a memory (update, forget, feedback) is for its owner alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from engram.errors import EngramError
from engram.model import MemoryEntry, Privacy, check_id

READ, WRITE, ANY_USER, ADMIN, SYNC = "read", "write", "any-user", "admin", "sync"
METRICS = "metrics"
KEY_COOKIE = "engram_key"  # the dashboard's session cookie
SCOPES = (READ, WRITE, ANY_USER, ADMIN, SYNC, METRICS)
SCOPE_HELP = {
    READ: "search, list, read memories and contexts, chat through the proxy",
    WRITE: "add, update, forget, give feedback; the proxy records exchanges",
    ANY_USER: "act for the user a request names (user_id, the OpenAI `user` field)",
    ADMIN: "store-wide: every user, maintain, export of the event log, stats, dashboard",
    SYNC: "replicate the event log over /sync (the key's user's memories only, unless the "
          "key also has any-user or admin)",
    METRICS: "read /metrics (Prometheus): request counts and latencies, store counts; no "
             "memory's content",
}


class Unauthorized(EngramError):
    """No usable credentials: a missing, unknown or revoked key (HTTP 401)."""

    def __init__(self, problem: str, fix: str) -> None:
        self.field, self.problem, self.fix = "authorization", problem, fix
        super().__init__(f"authorization: {problem}; {fix}")


class Forbidden(EngramError):
    """Valid credentials that do not reach what was asked (HTTP 403)."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"{field}: {problem}; {fix}")


@dataclass(frozen=True, slots=True)
class Principal:
    """What a request acts as: a key's user and scopes, or the local owner (no keys yet)."""

    user_id: str | None
    scopes: frozenset[str]
    key_id: str | None = None

    @classmethod
    def local(cls) -> Principal:
        """A request from 127.0.0.1 while no key exists: the person at the machine."""
        return cls(None, frozenset(SCOPES))

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden("scope", f"this key lacks the {scope!r} scope",
                            f"create a key with --scope {scope} ({SCOPE_HELP[scope]})")

    @property
    def any_user(self) -> bool:
        return ANY_USER in self.scopes or ADMIN in self.scopes

    def acting_user(self, requested: str | None, default: str = "default") -> str:
        """The user a request acts for: the key's own, or the one it names if it may. An
        empty or blank id is refused, never read as "not given"."""
        requested = check_id(requested, "user_id")
        if self.any_user:
            return requested or self.user_id or default
        assert self.user_id is not None
        if requested is not None and requested != self.user_id:
            raise Forbidden("user_id", f"this key belongs to {self.user_id!r}, not "
                            f"{requested!r}", "leave user_id out, or use a key with the "
                            "any-user scope")
        return self.user_id


def can_read(principal: Principal, entry: MemoryEntry) -> bool:
    """Whether `principal` may see `entry`: its own, shared with it, public, or admin. An
    agent gets a key of its own (`engram keys create --user planner`), so `shared_with` names
    users and agents alike."""
    if ADMIN in principal.scopes or entry.privacy is Privacy.PUBLIC:
        return True
    if principal.user_id is None:
        return principal.any_user
    if entry.user_id == principal.user_id:
        return True
    if entry.privacy is Privacy.SHARED and principal.user_id in entry.shared_with:
        return True
    return ANY_USER in principal.scopes


def can_write(principal: Principal, entry: MemoryEntry) -> bool:
    """Whether `principal` may change or forget `entry`: its owner (or any-user, admin)."""
    return principal.any_user or entry.user_id == principal.user_id
