"""The attention a local model gave the memories in its context, kept with the turn it answered
(`metadata["attention"]`: memory id -> share), so the dashboard shows after the fact which
memories an answer leaned on, as `/why` does in the chat. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

KEY = "attention"  # the turn metadata's field
DIGITS = 4  # shares are kept to 0.01 %


def kept(attention: Mapping[str, float] | None,
         placed: Collection[str]) -> dict[str, dict[str, float]]:
    """Turn metadata holding the shares of the memories that were placed in the context,
    rounded; nothing when the answer reported no attention."""
    shares = {memory: round(float(share), DIGITS)
              for memory, share in (attention or {}).items() if memory in placed}
    return {KEY: shares} if shares else {}


def leaned_on(metadata: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The memories a turn's answer leaned on, largest share first (none when its model
    reported no attention, or the metadata is not what `kept` writes)."""
    shares = metadata.get(KEY)
    if not isinstance(shares, dict):
        return []
    found = [(str(m), float(s)) for m, s in shares.items()
             if isinstance(s, int | float) and not isinstance(s, bool)]
    return sorted(found, key=lambda pair: (-pair[1], pair[0]))
