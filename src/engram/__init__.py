"""Engram: a local-first, event-sourced long-term memory for LLMs.

    from engram import Memory
    mem = Memory("./engram-data")
"""

from engram.clock import Clock, ManualClock, SystemClock
from engram.errors import EngramError, InvalidInput, NotFound, StoreError
from engram.log.events import Event, EventType
from engram.memory import Memory
from engram.model import (
    Confidence,
    Kind,
    LinkKind,
    MemoryEntry,
    Privacy,
    Source,
    Status,
    Tier,
    Truth,
)
from engram.query import Hit

__all__ = [
    "Clock", "Confidence", "EngramError", "Event", "EventType", "Hit", "InvalidInput", "Kind",
    "LinkKind", "ManualClock", "Memory", "MemoryEntry", "NotFound", "Privacy", "Source",
    "Status", "StoreError", "SystemClock", "Tier", "Truth",
]
__version__ = "0.1.0"
