"""Named settings: what a store keeps beside its log that is not a memory. Each says whether it
stays on this device or travels with the log to another store (`engram migrate`, and sync).

A setting may be qualified (one value per chat session, say); it is stored as
`setting.NAME` or `setting.NAME:QUALIFIER` in the store's meta table, the spelling every
earlier release used, so old stores read as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    DEVICE = "device"  # this device's own state: never copied
    LOG = "log"  # belongs with the memories: copied wherever the log goes


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    scope: Scope
    about: str

    def key(self, qualifier: str = "") -> str:
        """The meta-table key of this setting (for `qualifier`, one of its values)."""
        return f"setting.{self.name}:{qualifier}" if qualifier else f"setting.{self.name}"

    def qualifier_of(self, key: str) -> str | None:
        """The qualifier a meta-table key holds for this setting, "" unqualified, or None."""
        if key == self.key():
            return ""
        prefix = self.key() + ":"
        return key[len(prefix):] if key.startswith(prefix) else None


EMBEDDER = Setting("embedder", Scope.LOG, "the embedding model spec the store's vectors use")
EMBEDDER_MODEL = Setting("embedder_model", Scope.LOG, "the name of that embedding model")
MAINTAINED_AT = Setting("maintained_at", Scope.DEVICE, "when maintenance last ran here")
API_KEYS = Setting("server.api_keys", Scope.DEVICE, "the service's API keys (hashed)")
CONTEXT_USAGE = Setting("server.context_usage", Scope.DEVICE,
                        "what the service's contexts used, for the dashboard")
CHAT_SUMMARY = Setting("chat.summary", Scope.LOG,
                       "a chat session's model-written summary, per user:session")
OLLAMA_CONTEXT = Setting("chat.ollama_context", Scope.DEVICE,
                         "one Ollama model's context tokens, per user:session:model")
SYNC_PEERS = Setting("sync.peers", Scope.DEVICE,
                     "per peer name: its URL and what this store knows the peer holds")

SETTINGS = (EMBEDDER, EMBEDDER_MODEL, MAINTAINED_AT, API_KEYS, CONTEXT_USAGE, CHAT_SUMMARY,
            OLLAMA_CONTEXT, SYNC_PEERS)
TRAVELLING = tuple(s for s in SETTINGS if s.scope is Scope.LOG)
