"""LLM providers against recorded wire shapes (tests/data/llm/, copied from the public API docs
of OpenAI, Anthropic and Ollama), replayed by a local HTTP server on 127.0.0.1 to the real SDKs:
no paid API and no model server is needed. Backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engram.errors import InvalidInput
from engram.llm import (
    KINDS,
    Provider,
    ProviderError,
    ProviderUnreachable,
    RetryPolicy,
    load_provider,
)
from engram.llm.base import check_messages
from engram.llm.litellm import import_litellm
from engram.llm.ollama import Generation, OllamaProvider, ollama_url

DATA = Path(__file__).parent / "data" / "llm"
HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ReplayServer:
    """Answers each request with the next queued Reply and records what it was sent."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.seen.append(Seen("POST", self.path,
                                        {k.lower(): v for k, v in self.headers.items()},
                                        json.loads(raw) if raw else None))
                reply = server.replies.pop(0) if server.replies else Reply(599, b"{}")
                time.sleep(reply.delay_s)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the client gave up (timeout tests)
                    self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, args=(0.01,), daemon=True).start()

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    replay = ReplayServer()
    yield replay
    replay.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=3, base_delay_s=0.5, sleep=sleeps.append)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                 "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "OLLAMA_API_KEY", "ENGRAM_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- OpenAI (official SDK, any base_url) ---------------------------------------------------

def openai_at(server: ReplayServer, retry: RetryPolicy, **config: Any) -> Any:
    return load_provider(f"openai:gpt-4o-mini@{server.url}/v1", retry=retry, **config)


def test_openai_complete_sends_the_chat_and_reads_the_answer(server: ReplayServer,
                                                             retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("openai_chat.json")))
    provider = openai_at(server, retry, api_key="sk-test")
    assert provider.complete(HELLO, temperature=0.2) == "Hello! How can I assist you today?"
    request = server.seen[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == HELLO
    assert request.body["temperature"] == 0.2
    assert provider.name == "openai:gpt-4o-mini"


def test_openai_stream_yields_the_sse_deltas(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("openai_chat_stream.sse"), content_type=SSE))
    pieces = list(openai_at(server, retry).stream(HELLO))
    assert pieces == ["Hello", "! How can I", " help?"]
    assert server.seen[0].body["stream"] is True


def test_openai_retries_429_then_succeeds(server: ReplayServer, retry: RetryPolicy,
                                          sleeps: list[float]) -> None:
    server.queue(Reply(429, recorded("openai_429.json"), headers={"retry-after": "2"}),
                 Reply(body=recorded("openai_chat.json")))
    assert openai_at(server, retry).complete(HELLO).startswith("Hello!")
    assert len(server.seen) == 2
    assert sleeps == [2.0]  # the server's Retry-After beats the 0.5 s first backoff


def test_openai_stream_retries_429_before_the_first_piece(server: ReplayServer,
                                                          retry: RetryPolicy,
                                                          sleeps: list[float]) -> None:
    server.queue(Reply(429, recorded("openai_429.json")),
                 Reply(body=recorded("openai_chat_stream.sse"), content_type=SSE))
    assert "".join(openai_at(server, retry).stream(HELLO)) == "Hello! How can I help?"
    assert sleeps == [0.5]


def test_openai_500_exhausts_attempts_with_a_clear_error(server: ReplayServer,
                                                         retry: RetryPolicy,
                                                         sleeps: list[float]) -> None:
    server.queue(*[Reply(500, recorded("openai_500.json"))] * 3)
    with pytest.raises(ProviderError) as caught:
        openai_at(server, retry).complete(HELLO)
    assert len(server.seen) == 3
    assert sleeps == [0.5, 1.0]
    message = str(caught.value)
    assert f"{server.url}/v1/chat/completions" in message
    assert "answered 500: The server had an error" in message
    assert "3 times, giving up" in message and "attempts=" in message
    assert caught.value.status == 500


def test_openai_401_is_not_retried_and_names_the_key(server: ReplayServer,
                                                     retry: RetryPolicy) -> None:
    server.queue(Reply(401, recorded("openai_401.json")))
    with pytest.raises(ProviderError, match=r"answered 401: Incorrect API key.*OPENAI_API_KEY"):
        openai_at(server, retry, api_key="sk-wrong").complete(HELLO)
    assert len(server.seen) == 1


def test_openai_missing_key_names_the_variable_and_url() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_provider("openai:gpt-4o-mini")
    assert caught.value.field == "OPENAI_API_KEY"
    assert "https://api.openai.com/v1" in str(caught.value)
    assert "export OPENAI_API_KEY" in caught.value.fix


def test_openai_compatible_local_server_needs_no_key(server: ReplayServer,
                                                     retry: RetryPolicy,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")  # vLLM, llama.cpp, LM Studio
    server.queue(Reply(body=recorded("openai_chat.json")))
    assert load_provider("openai:qwen2.5", retry=retry).complete(HELLO)
    assert server.seen[0].headers["authorization"] == "Bearer not-needed"


def test_openai_unreachable_server_names_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    with pytest.raises(ProviderUnreachable) as caught:
        load_provider(f"openai:gpt-4o-mini@{url}").complete(HELLO)
    assert url in str(caught.value)
    assert "cannot be reached" in str(caught.value)
    assert "OPENAI_BASE_URL" in str(caught.value)


# --- Anthropic (official SDK) ---------------------------------------------------------------
# The SDK warns that claude-sonnet-4-5 is deprecated; it is still the example spec.
sdk_deprecation = pytest.mark.filterwarnings("ignore:The model:DeprecationWarning")


def anthropic_at(server: ReplayServer, retry: RetryPolicy) -> Any:
    return load_provider(f"anthropic:claude-sonnet-4-5@{server.url}", api_key="sk-ant-test",
                         retry=retry)


@sdk_deprecation
def test_anthropic_complete_moves_system_messages_to_the_system_parameter(
        server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("anthropic_message.json")))
    assert anthropic_at(server, retry).complete(HELLO) == "Hi! My name is Claude."
    request = server.seen[0]
    assert request.path == "/v1/messages"
    key_header = request.headers.get("x-api-key") or request.headers["authorization"]
    assert key_header.endswith("sk-ant-test")  # x-api-key in SDK 0.x, a Bearer token in 2.x
    assert "anthropic-version" in request.headers
    assert request.body["system"] == "You are terse."
    assert request.body["messages"] == [{"role": "user", "content": "Hi"}]
    assert request.body["max_tokens"] == 1024


@sdk_deprecation
def test_anthropic_stream_yields_text_deltas(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("anthropic_stream.sse"), content_type=SSE))
    assert list(anthropic_at(server, retry).stream(HELLO, max_tokens=64)) == ["Hello", "!"]
    assert server.seen[0].body["stream"] is True
    assert server.seen[0].body["max_tokens"] == 64


@sdk_deprecation
def test_anthropic_retries_529_overloaded(server: ReplayServer, retry: RetryPolicy,
                                          sleeps: list[float]) -> None:
    server.queue(Reply(529, recorded("anthropic_529.json")),
                 Reply(429, recorded("anthropic_529.json")),
                 Reply(body=recorded("anthropic_message.json")))
    assert anthropic_at(server, retry).complete(HELLO) == "Hi! My name is Claude."
    assert sleeps == [0.5, 1.0]


def test_anthropic_missing_key_names_the_variable() -> None:
    with pytest.raises(InvalidInput, match=r"ANTHROPIC_API_KEY: not set, and "
                       r"https://api\.anthropic\.com needs one"):
        load_provider("anthropic:claude-sonnet-4-5")


def test_anthropic_needs_a_user_turn(server: ReplayServer, retry: RetryPolicy) -> None:
    with pytest.raises(InvalidInput, match="only system messages"):
        anthropic_at(server, retry).complete([{"role": "system", "content": "x"}])


# --- Ollama (HTTP API: /api/chat, /api/generate with context) -------------------------------

def ollama_at(server: ReplayServer, retry: RetryPolicy, **config: Any) -> OllamaProvider:
    return OllamaProvider("phi3", base_url=server.url, retry=retry, **config)


def test_ollama_complete_maps_options(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("ollama_chat.json")))
    answer = ollama_at(server, retry, api_key="ok").complete(HELLO, max_tokens=50, temperature=0,
                                               keep_alive="10m")
    assert answer == "Hello! How are you today?"
    assert server.seen[0].path == "/api/chat"
    assert server.seen[0].headers["authorization"] == "Bearer ok"
    assert server.seen[0].body == {"model": "phi3", "messages": HELLO, "stream": False,
                                   "keep_alive": "10m",
                                   "options": {"num_predict": 50, "temperature": 0}}


def test_ollama_stream_reads_ndjson(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("ollama_chat_stream.ndjson"), content_type=NDJSON))
    assert list(ollama_at(server, retry).stream(HELLO)) == ["The", " sky", " is blue."]
    assert server.seen[0].body["stream"] is True


def test_ollama_context_round_trip(server: ReplayServer, retry: RetryPolicy) -> None:
    """The context array of one answer, persisted as JSON, continues the next prompt."""
    server.queue(Reply(body=recorded("ollama_generate_1.json")),
                 Reply(body=recorded("ollama_generate_2.json")))
    provider = ollama_at(server, retry)
    first = provider.generate("I am Caroline.", system="Be brief.")
    assert first == Generation("Nice to meet you, Caroline.", [1, 2, 3])
    saved = json.dumps(first.context)  # what a session store would keep
    text, context = provider.generate("What is my name?", context=json.loads(saved))
    assert (text, context) == ("Your name is Caroline.", [1, 2, 3, 4, 5, 6])
    assert [s.path for s in server.seen] == ["/api/generate", "/api/generate"]
    assert "context" not in server.seen[0].body
    assert server.seen[0].body["system"] == "Be brief."
    assert server.seen[1].body["context"] == [1, 2, 3]
    assert server.seen[1].body["prompt"] == "What is my name?"


def test_ollama_generate_stream_sets_context_at_the_end(server: ReplayServer,
                                                        retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("ollama_generate_stream.ndjson"), content_type=NDJSON))
    answer = ollama_at(server, retry).generate_stream("What is my name?", context=[1, 2, 3])
    assert answer.context is None
    assert "".join(answer) == "Your name is Caroline."
    assert answer.context == [1, 2, 3, 4, 5, 6]
    assert server.seen[0].body["context"] == [1, 2, 3]


def test_ollama_stream_retries_429_then_succeeds(server: ReplayServer, retry: RetryPolicy,
                                                 sleeps: list[float]) -> None:
    server.queue(Reply(429, b'{"error": "server busy, please try again"}'),
                 Reply(body=recorded("ollama_chat_stream.ndjson"), content_type=NDJSON))
    assert "".join(ollama_at(server, retry).stream(HELLO)) == "The sky is blue."
    assert sleeps == [0.5]


def test_ollama_500_exhausts_attempts(server: ReplayServer, sleeps: list[float]) -> None:
    server.queue(*[Reply(500, b'{"error": "llama runner process has terminated"}')] * 2)
    provider = ollama_at(server, RetryPolicy(attempts=2, sleep=sleeps.append))
    with pytest.raises(ProviderError, match=r"/api/chat answered 500: llama runner process "
                       r"has terminated \(2 times, giving up\)"):
        provider.complete(HELLO)
    assert len(server.seen) == 2


def test_ollama_missing_model_says_pull_it(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(404, recorded("ollama_404.json")))
    with pytest.raises(ProviderError, match=r'model "phi3" not found.*ollama pull phi3'):
        ollama_at(server, retry).complete(HELLO)
    assert len(server.seen) == 1


def test_ollama_unreachable_server_names_the_url(closed_port: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port}")
    with pytest.raises(ProviderUnreachable) as caught:
        list(load_provider("ollama:phi3").stream(HELLO))
    assert f"http://127.0.0.1:{closed_port}/api/chat" in str(caught.value)
    assert "ollama serve" in str(caught.value) and "OLLAMA_HOST" in str(caught.value)


def test_ollama_timeout_is_configurable(server: ReplayServer, retry: RetryPolicy) -> None:
    server.queue(Reply(body=recorded("ollama_chat.json"), delay_s=0.5))
    with pytest.raises(ProviderUnreachable, match=r"gave no answer within 0\.1 s"):
        ollama_at(server, retry, timeout_s=0.1).complete(HELLO)


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:11434"),
    ("0.0.0.0:8080", "http://127.0.0.1:8080"),
    ("gpu-box", "http://gpu-box:11434"),
    ("https://ollama.example.com", "https://ollama.example.com:443"),
    ("http://[::1]:11434/", "http://[::1]:11434"),
])
def test_ollama_host_forms(host: str, url: str) -> None:
    assert ollama_url(host) == url


# --- LiteLLM ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def litellm_available() -> None:
    try:
        import_litellm()  # offline: with LITELLM_LOCAL_MODEL_COST_MAP, as the provider does
    except InvalidInput:
        pytest.skip("litellm is not installed (pip install 'engram-memory[litellm]')")


@pytest.mark.usefixtures("litellm_available")
def test_litellm_complete_and_stream(server: ReplayServer, retry: RetryPolicy) -> None:
    """LiteLLM's `openai/` route speaks the OpenAI wire format to the replay server."""
    server.queue(Reply(body=recorded("openai_chat.json")),
                 Reply(body=recorded("openai_chat_stream.sse"), content_type=SSE))
    provider = load_provider(f"litellm:openai/gpt-4o-mini@{server.url}/v1", api_key="sk-test",
                             retry=retry)
    assert provider.complete(HELLO) == "Hello! How can I assist you today?"
    assert "".join(provider.stream(HELLO)) == "Hello! How can I help?"
    assert server.seen[0].body["model"] == "gpt-4o-mini"
    assert server.seen[0].body["messages"] == HELLO


@pytest.mark.usefixtures("litellm_available")
def test_litellm_retries_429_and_gives_up_on_500(server: ReplayServer, retry: RetryPolicy,
                                                 sleeps: list[float]) -> None:
    server.queue(Reply(429, recorded("openai_429.json")),
                 Reply(body=recorded("openai_chat.json")),
                 *[Reply(500, recorded("openai_500.json"))] * 3)
    provider = load_provider(f"litellm:openai/gpt-4o-mini@{server.url}/v1", api_key="sk-test",
                             retry=retry)
    assert provider.complete(HELLO).startswith("Hello!")
    with pytest.raises(ProviderError, match=r"answered 500.*giving up"):
        provider.complete(HELLO)
    assert len(server.seen) == 5


# --- the factory and the shared rules -------------------------------------------------------

def test_every_kind_speaks_the_protocol(server: ReplayServer) -> None:
    for kind in KINDS:
        if kind in ("hf", "lora"):  # local model folders, not servers: tests/test_state_chat.py
            continue  # and tests/test_train_lora.py
        if kind == "litellm":
            try:
                import_litellm()
            except InvalidInput:
                continue
        provider = load_provider(f"{kind}:some-model@{server.url}", api_key="k")
        assert isinstance(provider, Provider)
        assert provider.name == f"{kind}:some-model"


def test_load_provider_reads_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_MODEL", "ollama:phi3:mini@http://gpu-box:11434")
    provider = load_provider(attempts=5, timeout_s=9)
    assert isinstance(provider, OllamaProvider)
    assert (provider.model, provider.base_url) == ("phi3:mini", "http://gpu-box:11434")
    assert (provider.retry.attempts, provider.timeout_s) == (5, 9.0)


@pytest.mark.parametrize(("spec", "field", "words"), [
    ("gemini:pro", "model", "unknown provider 'gemini'"),
    ("ollama:", "model", "names no model"),
    ("", "model", "no model chosen"),
])
def test_load_provider_rejects_bad_specs(spec: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        load_provider(spec)
    assert caught.value.field == field


def test_load_provider_rejects_unknown_options() -> None:
    with pytest.raises(InvalidInput, match="temprature: ollama providers take no such option"):
        load_provider("ollama:phi3", temprature=0.1)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "engram.llm.anthropic", raising=False)
    with pytest.raises(InvalidInput, match=r"the anthropic package.*engram-memory\[llm\]"):
        load_provider("anthropic:claude-sonnet-4-5", api_key="k")


@pytest.mark.parametrize(("messages", "field"), [
    ([], "messages"),
    ("hello", "messages"),
    ([{"role": "robot", "content": "x"}], "messages[0].role"),
    ([{"role": "user", "content": "x"}, {"role": "user", "content": 3}], "messages[1].content"),
])
def test_messages_are_checked(messages: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_messages(messages)
    assert caught.value.field == field


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=1, max_delay_s=5)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert policy.delay(1, retry_after_s=3) == 3
    assert policy.delay(1, retry_after_s=60) == 5
    with pytest.raises(InvalidInput, match="attempts"):
        RetryPolicy(attempts=0)
