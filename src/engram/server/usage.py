"""Context utilisation: tokens used against the budget, for every context the server assembled.

Kept in the store's settings (no schema of our own), batched like access statistics: the
latest samples and per-day totals, written every `flush_every` records and on shutdown.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from engram.store.base import Store
from engram.store.settings import CONTEXT_USAGE

KEEP_SAMPLES = 500


@dataclass(frozen=True, slots=True)
class Sample:
    at: str  # UTC ISO 8601
    user_id: str
    budget_tokens: int
    tokens_used: int
    memories: int
    via: str  # "context", "proxy" or "mcp"
    recalled: int = 0  # memories recalled for it (those used are `memories`): recall hit rate


class ContextUsage:
    def __init__(self, store: Store, flush_every: int = 50) -> None:
        self.store, self.flush_every = store, flush_every
        self._pending: list[Sample] = []

    def record(self, sample: Sample) -> None:
        self._pending.append(sample)
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        state = self._stored()
        for s in self._pending:
            day = state["days"].setdefault(s.at[:10], [0, 0, 0])
            day[0] += 1
            day[1] += s.tokens_used
            day[2] += s.budget_tokens
        state["samples"] = (state["samples"] + [asdict(s) for s in self._pending])[-KEEP_SAMPLES:]
        self._pending = []
        self.store.set_setting(CONTEXT_USAGE, json.dumps(state))

    def summary(self) -> dict[str, Any]:
        """`samples` (newest last) and `days` {date: [contexts, tokens used, tokens budgeted]}."""
        self.flush()
        return self._stored()

    def _stored(self) -> dict[str, Any]:
        raw = self.store.get_setting(CONTEXT_USAGE)
        state: dict[str, Any] = json.loads(raw) if raw else {}
        return {"samples": state.get("samples", []), "days": state.get("days", {})}
