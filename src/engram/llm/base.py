"""The provider protocol every model backend speaks, its errors, and the retry rule they share.

Messages are OpenAI-style dicts, `{"role": "system" | "user" | "assistant", "content": str}`:
the shape every backend can be mapped from, and the one `context.py` assembles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from engram.errors import EngramError, InvalidInput

Message = Mapping[str, str]
ROLES = ("system", "user", "assistant")
RETRYABLE = frozenset({408, 429}) | frozenset(range(500, 600))
T = TypeVar("T")


@runtime_checkable
class Provider(Protocol):
    """A chat model: a full answer, or the answer piece by piece as it is written."""

    @property
    def name(self) -> str:
        """`kind:model`, e.g. `ollama:phi3`; recorded beside every turn the model answers."""
        ...

    def complete(self, messages: Sequence[Message], **options: object) -> str: ...

    def stream(self, messages: Sequence[Message], **options: object) -> Iterator[str]: ...


class ProviderError(EngramError):
    """A model server refused, failed or could not be reached: names the URL and the fix."""

    def __init__(self, provider: str, url: str, problem: str, fix: str,
                 status: int | None = None, retry_after_s: float | None = None) -> None:
        self.provider, self.url, self.problem, self.fix = provider, url, problem, fix
        self.status, self.retry_after_s = status, retry_after_s
        super().__init__(f"{provider}: {url} {problem}; {fix}")

    @property
    def retryable(self) -> bool:
        """Rate limits and server faults pass; bad keys and bad requests do not."""
        return self.status in RETRYABLE


class ProviderUnreachable(ProviderError):
    """Nothing answered at the URL (refused, DNS, timeout): the server is down or misnamed."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for 429 and 5xx: delays base, 2·base, 4·base… capped at max_delay_s.

    A server's Retry-After is honoured up to max_delay_s. `sleep` is injectable for tests.
    """

    attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidInput("attempts", f"must be at least 1, got {self.attempts}",
                               "pass attempts=1 for no retries")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise InvalidInput("retry", "delays must not be negative",
                               "pass base_delay_s and max_delay_s >= 0")

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        wait = self.base_delay_s * 2 ** (attempt - 1)
        if retry_after_s is not None:
            wait = max(wait, retry_after_s)
        return float(min(wait, self.max_delay_s))


def call_with_retry(call: Callable[[], T], policy: RetryPolicy) -> T:
    """`call()`, again after a backoff while it fails with a retryable ProviderError."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except ProviderError as exc:
            _wait_or_give_up(exc, attempt, policy)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def stream_with_retry(start: Callable[[], Iterator[str]], policy: RetryPolicy) -> Iterator[str]:
    """Retry a stream until its first piece arrives; once text has been shown, errors surface."""
    for attempt in range(1, policy.attempts + 1):
        pieces = start()
        try:
            first = next(pieces)
        except StopIteration:
            return
        except ProviderError as exc:
            _wait_or_give_up(exc, attempt, policy)
            continue
        yield first
        yield from pieces
        return


def _wait_or_give_up(exc: ProviderError, attempt: int, policy: RetryPolicy) -> None:
    if not exc.retryable:
        raise exc
    if attempt >= policy.attempts:
        tries = "once" if attempt == 1 else f"{attempt} times"
        raise ProviderError(exc.provider, exc.url, f"{exc.problem} ({tries}, giving up)",
                            "the server is overloaded or failing: wait and try again, or "
                            "raise attempts=", exc.status) from exc
    policy.sleep(policy.delay(attempt, exc.retry_after_s))


def check_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Plain `{"role", "content"}` dicts, or an InvalidInput naming the bad message."""
    if isinstance(messages, str | bytes) or not messages:
        raise InvalidInput("messages", "expected a non-empty list of {role, content} dicts",
                           'pass e.g. [{"role": "user", "content": "hello"}]')
    checked = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InvalidInput(f"messages[{i}].role", f"{role!r} is not a chat role",
                               "use system, user or assistant")
        if not isinstance(content, str):
            raise InvalidInput(f"messages[{i}].content", "must be a string",
                               "pass the message text as a str")
        checked.append({"role": role, "content": content})
    return checked


def check_timeout(timeout_s: float) -> float:
    if not timeout_s > 0:
        raise InvalidInput("timeout_s", f"must be positive, got {timeout_s}",
                           "pass the seconds to wait for a model answer, e.g. timeout_s=60")
    return float(timeout_s)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The Retry-After header in seconds, when it is a number (dates are ignored)."""
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def status_fix(status: int, key_env: str | None) -> str:
    """What a person should do about an HTTP status from a model server."""
    if status in (401, 403):
        return f"check {key_env}" if key_env else "check the server's credentials"
    if status == 404:
        return "check the model name and the base URL"
    if status == 429:
        return "you are rate limited: wait, or lower the request rate"
    if status >= 500:
        return "the server failed: try again later"
    return "check the request options"


def error_text(body: object, fallback: str) -> str:
    """The human sentence in an API error body (`{"error": {"message": …}}` and variants)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback


@dataclass(frozen=True)
class ErrorMap:
    """How one SDK's exceptions read as ProviderErrors (OpenAI, Anthropic and LiteLLM share
    the shape: `status_code`, `response.headers`, `body`, `request.url`)."""

    provider: str
    url: str
    key_env: str | None
    timeout_s: float
    unreachable_fix: str
    timeouts: tuple[type[BaseException], ...]
    connections: tuple[type[BaseException], ...]
    request_url: bool = True  # False where the SDK's request URL is a placeholder (LiteLLM)

    def __call__(self, exc: BaseException) -> ProviderError:
        request = getattr(exc, "request", None)
        where = str(getattr(request, "url", "") or self.url) if self.request_url else self.url
        if isinstance(exc, self.timeouts):
            return ProviderUnreachable(self.provider, where,
                                       f"gave no answer within {self.timeout_s:g} s",
                                       "raise timeout_s= or check that the server is not stuck")
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status >= 400:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            text = error_text(getattr(exc, "body", None), str(getattr(exc, "message", exc)))
            return ProviderError(self.provider, where, f"answered {status}: {text}",
                                 status_fix(status, self.key_env), status, retry_after(headers))
        if isinstance(exc, self.connections):
            cause = exc.__cause__ or exc
            return ProviderUnreachable(self.provider, where, f"cannot be reached ({cause})",
                                       self.unreachable_fix)
        return ProviderError(self.provider, where, f"failed: {exc}", "see the server's logs")
