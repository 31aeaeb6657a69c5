"""Request bodies of the REST API, with the examples /openapi.json shows.

The schema is as strict as the checks behind it (`Memory` and `validate` keep the one set of
rules and messages for the CLI, the library and the API): strict types (no "1" for 1, no 0 for
false), non-blank ids and labels, enums for kinds and tiers. null stands for "not given",
except in a change (PATCH), where it could mean "clear" as well as "keep". Schemathesis holds
the schema and the checks together (tests/test_server_schema.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from engram.model import DEFAULT_MAX_CONTENT_BYTES

Rating = Literal["good", "bad", "correction"]
Style = Literal["claude", "openai", "openai-json", "ollama", "markdown", "json"]
# The values of engram.model's Kind, Tier and Truth (a test keeps them equal).
MemoryType = Literal["fact", "belief", "preference", "skill", "event", "context", "concept"]
TierName = Literal["short_term", "long_term", "persistent"]
TruthName = Literal["absolute", "contextual", "opinion", "inferred"]
Privacy = Literal["private", "shared", "public"]
# A character that str.strip() keeps: Python's whitespace spelled out, so that every regex
# engine on the way (pydantic's, the JSON Schema validators', hypothesis') reads it alike.
NON_BLANK = (r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029"
             r"\u202f\u205f\u3000]")
Id = Annotated[str, Field(min_length=1, max_length=256, pattern=NON_BLANK,
                          description="A non-blank id (at most 256 characters)")]
Label = Annotated[str, Field(min_length=1, max_length=256, pattern=NON_BLANK)]
# No maxLength: the limit is in bytes (64 KiB of UTF-8 by default), checked by `Memory`.
Text = Annotated[str, Field(min_length=1, pattern=NON_BLANK,
                            description=f"Non-blank, at most {DEFAULT_MAX_CONTENT_BYTES} bytes "
                            "of UTF-8")]
When = Annotated[str, Field(json_schema_extra={"format": "date-time"},
                            description="ISO 8601, e.g. 2026-09-01T10:00:00Z")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


def _whole(value: object) -> object:
    """10.0 is an integer to JSON Schema: let it be one here too (strict mode refuses it)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# After the bounds in Annotated[int, Field(ge=..), WHOLE], or the schema shows "ge", not "minimum"
WHOLE = BeforeValidator(_whole)
Metadata = Annotated[dict[str, Any], Field(description="JSON values, nested at most 30 deep")]


def _absent(**info: Any) -> Any:
    """The default of a field of a change that may be left out but not sent as null (null
    would not say whether to clear the field or keep it)."""
    return Field(default=None, **info)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MemoryCreate(Body):
    text: Text = Field(examples=["I moved to Berlin in September"])
    user_id: Id | None = Field(None, description="Defaults to the key's user.",
                        examples=["alice"])
    agent_id: Id | None = None
    session_id: Id | None = Field(None, examples=["s1"])
    at: When | None = None
    tags: list[Label] | None = Field(None, examples=[["home"]])
    memory_type: MemoryType = Field("fact", examples=["fact"])
    tier: TierName = "short_term"
    truth_category: TruthName = "contextual"
    metadata: Metadata | None = None
    confidence: Unit | None = None
    privacy: Privacy = "private"
    shared_with: list[Label] | None = Field(None, description="Users or agents a `shared` "
                                     "memory is readable by.", examples=[["bob"]])
    sensitive: bool = Field(False, description="Kept out of contexts sent to remote models.")
    entities: list[Label] | None = None
    domains: list[Label] | None = None
    summary: str | None = None
    dedupe: bool = True

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"text": "I moved to Berlin in September", "user_id": "alice", "tags": ["home"]}]})


class MemoryUpdate(Body):
    """At least one field: what to change."""

    text: Text = _absent(examples=["I moved to Hamburg"])
    metadata: Metadata = _absent()
    memory_type: MemoryType = _absent()
    truth_category: TruthName = _absent()
    privacy: Privacy = _absent()
    summary: str = _absent()
    confidence: Unit = _absent()
    at: When = _absent()
    add_tags: list[Label] = _absent(min_length=1, examples=[["city"]])
    remove_tags: list[Label] = _absent(min_length=1)

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _something(self) -> MemoryUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class SearchRequest(Body):
    query: Text = Field(examples=["where does alice live?"])
    user_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=1000), WHOLE] = 10
    agent_id: Id | None = None
    session_id: Id | None = None
    tags: list[Label] | None = None
    memory_type: MemoryType | None = None
    tier: TierName | None = None
    since: When | None = None
    until: When | None = None
    explain: bool = Field(False, description="Add each hit's score components.")
    include_sensitive: bool = True

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"query": "where does alice live?", "user_id": "alice", "limit": 5, "explain": True}]})


class ChatMessage(Body):
    role: Literal["system", "user", "assistant"]
    content: Text


class ContextRequest(Body):
    """A query, or a conversation holding a user turn (its last one is the query)."""

    query: Text | None = Field(None, description="Defaults to the conversation's last user "
                        "turn.", examples=["what should I cook tonight?"])
    user_id: Id | None = None
    session_id: Id | None = Field(None, description="The session the context is for: its "
                                  "recorded turns are the conversation when none is sent, "
                                  "and they are not recalled a second time.")
    conversation: list[ChatMessage] = Field(default_factory=list)
    budget_tokens: Annotated[int, Field(ge=16, le=1_000_000), WHOLE] = 1500
    style: Style = "claude"
    limit: Annotated[int, Field(ge=1, le=1000), WHOLE] = 50
    include_sensitive: bool = True

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"query": "what should I cook tonight?", "user_id": "alice",
                      "budget_tokens": 800, "style": "claude"}],
        "anyOf": [{"required": ["query"], "properties": {"query": {"type": "string"}}},
                  {"required": ["conversation"], "properties": {"conversation": {
                      "contains": {"properties": {"role": {"const": "user"}}}}}}]})

    @model_validator(mode="after")
    def _asks(self) -> ContextRequest:
        if self.query is None and not any(m.role == "user" for m in self.conversation):
            raise ValueError("give a query or a conversation with a user turn")
        return self


class FeedbackRequest(Body):
    """`correction` goes with rating `correction`, and only with it."""

    rating: Rating = Field(examples=["good"])
    correction: Text | None = Field(None, description="The right text, with rating "
                             "`correction`.")

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"oneOf": [
        {"properties": {"rating": {"enum": ["good", "bad"]}}, "not": {
            "required": ["correction"], "properties": {"correction": {"type": "string"}}}},
        {"properties": {"rating": {"const": "correction"}, "correction": {"type": "string"}},
         "required": ["correction"]}]})

    @model_validator(mode="after")
    def _paired(self) -> FeedbackRequest:
        if (self.rating == "correction") != (self.correction is not None):
            raise ValueError("correction goes with rating 'correction', and only with it")
        return self


class TurnRequest(Body):
    user_msg: Text = Field(examples=["I am allergic to peanuts"])
    assistant_msg: str | None = Field(None, examples=["Noted: no peanuts."])
    user_id: Id | None = None
    session_id: Id = Field(examples=["s1"])
    agent_id: Id | None = None
    at: When | None = None
