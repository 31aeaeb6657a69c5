"""Request bodies of the REST API, with the examples /openapi.json shows.

Only shapes live here; values are checked by `Memory` itself (one set of rules, one set of
error messages for the CLI, the library and the API).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Rating = Literal["good", "bad", "correction"]
Style = Literal["claude", "openai", "openai-json", "ollama", "markdown", "json"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryCreate(Body):
    text: str = Field(examples=["I moved to Berlin in September"])
    user_id: str | None = Field(None, description="Defaults to the key's user.",
                                examples=["alice"])
    agent_id: str | None = None
    session_id: str | None = Field(None, examples=["s1"])
    at: str | None = Field(None, description="When it happened (ISO 8601).",
                           examples=["2026-09-01T10:00:00Z"])
    tags: list[str] | None = Field(None, examples=[["home"]])
    memory_type: str = Field("fact", examples=["fact"])
    tier: str = "short_term"
    truth_category: str = "contextual"
    metadata: dict[str, Any] | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    privacy: Literal["private", "shared", "public"] = "private"
    shared_with: list[str] | None = Field(None, description="Users or agents a `shared` "
                                          "memory is readable by.", examples=[["bob"]])
    sensitive: bool = Field(False, description="Kept out of contexts sent to remote models.")
    entities: list[str] | None = None
    domains: list[str] | None = None
    summary: str | None = None
    dedupe: bool = True

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "I moved to Berlin in September", "user_id": "alice", "tags": ["home"]}]})


class MemoryUpdate(Body):
    text: str | None = Field(None, examples=["I moved to Hamburg"])
    metadata: dict[str, Any] | None = None
    memory_type: str | None = None
    truth_category: str | None = None
    privacy: Literal["private", "shared", "public"] | None = None
    summary: str | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    at: str | None = None
    add_tags: list[str] | None = Field(None, examples=[["city"]])
    remove_tags: list[str] | None = None


class SearchRequest(Body):
    query: str = Field(examples=["where does alice live?"])
    user_id: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    agent_id: str | None = None
    session_id: str | None = None
    tags: list[str] | None = None
    memory_type: str | None = None
    tier: str | None = None
    since: str | None = None
    until: str | None = None
    explain: bool = Field(False, description="Add each hit's score components.")
    include_sensitive: bool = True

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "where does alice live?", "user_id": "alice", "limit": 5, "explain": True}]})


class ChatMessage(Body):
    role: Literal["system", "user", "assistant"]
    content: str


class ContextRequest(Body):
    query: str | None = Field(None, description="Defaults to the conversation's last user "
                              "turn.", examples=["what should I cook tonight?"])
    user_id: str | None = None
    conversation: list[ChatMessage] = Field(default_factory=list)
    budget_tokens: int = Field(1500, ge=16, le=1_000_000)
    style: Style = "claude"
    limit: int = Field(50, ge=1, le=1000)
    include_sensitive: bool = True

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "what should I cook tonight?", "user_id": "alice", "budget_tokens": 800,
         "style": "claude"}]})


class FeedbackRequest(Body):
    rating: Rating = Field(examples=["good"])
    correction: str | None = Field(None, description="The right text, with rating "
                                   "`correction`.")


class TurnRequest(Body):
    user_msg: str = Field(examples=["I am allergic to peanuts"])
    assistant_msg: str | None = Field(None, examples=["Noted: no peanuts."])
    user_id: str | None = None
    session_id: str = Field(examples=["s1"])
    agent_id: str | None = None
    at: str | None = None
