"""Context assembly: what a model sees next, within a token budget, in its own format. Pure.

`build_context` chooses (memories, the recent turns, a summary of older ones); `styles` writes
the choice for a model; `tokens` measures it.
"""

from engram.context.assemble import (
    DEFAULT_LIMITS,
    ContextPlan,
    Limits,
    Summarizer,
    build_context,
    exchanges,
    extractive_summary,
    first_sentence,
    render_plan,
    select_within_budget,
    summary_prompt,
)
from engram.context.styles import (
    CHAT_STYLES,
    MESSAGE_OVERHEAD,
    SECTIONS,
    STYLES,
    Parts,
    Prompt,
    Turn,
    group,
    line_for,
    render,
    render_parts,
)
from engram.context.tokens import (
    TokenCounter,
    estimate_tokens,
    fit_text,
    huggingface_counter,
    load_counter,
    tiktoken_counter,
)

__all__ = [
    "CHAT_STYLES",
    "DEFAULT_LIMITS",
    "MESSAGE_OVERHEAD",
    "SECTIONS",
    "STYLES",
    "ContextPlan",
    "Limits",
    "Parts",
    "Prompt",
    "Summarizer",
    "TokenCounter",
    "Turn",
    "build_context",
    "estimate_tokens",
    "exchanges",
    "extractive_summary",
    "first_sentence",
    "fit_text",
    "group",
    "huggingface_counter",
    "line_for",
    "load_counter",
    "render",
    "render_parts",
    "render_plan",
    "select_within_budget",
    "summary_prompt",
    "tiktoken_counter",
]
