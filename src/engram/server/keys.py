"""API keys, kept hashed in the store's settings so every server on the same store sees them.

A key is a random token shown once (`egm_…`); the store keeps its SHA-256, its user, scopes
and dates. Revoking keeps the record (so `keys list` shows it) and refuses the token.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from engram.errors import InvalidInput
from engram.model import check_id, format_time
from engram.server.access import SCOPES, Principal, Unauthorized
from engram.store.base import Store
from engram.store.settings import API_KEYS

PREFIX = "egm_"
_KEY_ID = re.compile(r"^[0-9a-f]{8}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record: never the token itself."""

    id: str
    user_id: str
    scopes: tuple[str, ...]
    token_sha256: str
    created_at: str
    revoked_at: str | None = None
    label: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        """What `keys list` shows: everything but the hash."""
        out = asdict(self)
        del out["token_sha256"]
        return out


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`read,write` (or a list) as known scopes, in canonical order."""
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {n.strip() for n in names if n.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        raise InvalidInput("scope", f"unknown scope {unknown[0]!r}" if unknown else "is empty",
                           f"use a comma-separated list of: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


class KeyRing:
    """The keys of one store. Reads the setting on every check, so a key created or revoked
    by another process counts at once."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self) -> list[ApiKey]:
        raw = self.store.get_setting(API_KEYS)
        return [ApiKey(**{**k, "scopes": tuple(k["scopes"])}) for k in json.loads(raw or "[]")]

    def exist(self) -> bool:
        """Whether any key was ever created: from then on, loopback requests need one too
        (revoking every key does not reopen the store)."""
        return bool(self.all())

    def create(self, user_id: str, scopes: str | list[str] | tuple[str, ...], *, now: datetime,
               label: str | None = None) -> tuple[str, ApiKey]:
        """A new key for `user_id`; returns the token (shown once) and its record."""
        user = check_id(user_id, "user", required=True)
        assert user is not None
        keys = self.all()
        taken = {k.id for k in keys}
        key_id = secrets.token_hex(4)
        while key_id in taken:
            key_id = secrets.token_hex(4)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, user, parse_scopes(scopes), digest(token), format_time(now),
                     label=label)
        self._save([*keys, key])
        return token, key

    def revoke(self, key_id: str, *, now: datetime) -> ApiKey:
        if not _KEY_ID.match(key_id):
            raise InvalidInput("key_id", f"{key_id!r} is not a key id",
                               "use an id from `engram keys list` (8 hex digits)")
        keys = self.all()
        for i, key in enumerate(keys):
            if key.id == key_id:
                if key.active:
                    keys[i] = replace(key, revoked_at=format_time(now))
                    self._save(keys)
                return keys[i]
        raise InvalidInput("key_id", f"no key {key_id!r}", "list keys with `engram keys list`")

    def authenticate(self, token: str) -> Principal:
        """The principal a presented token stands for, or Unauthorized saying why not."""
        wanted = digest(token.strip())
        for key in self.all():
            if secrets.compare_digest(key.token_sha256, wanted):
                if not key.active:
                    raise Unauthorized(f"key {key.id} was revoked at {key.revoked_at}",
                                       "ask for a new key (`engram keys create`)")
                return Principal(key.user_id, frozenset(key.scopes), key.id)
        raise Unauthorized("the API key is not known to this store",
                           "check the key, or create one with `engram keys create`")

    def _save(self, keys: list[ApiKey]) -> None:
        self.store.set_setting(API_KEYS, json.dumps([asdict(k) for k in keys]))
