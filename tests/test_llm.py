"""LLMClient against the FakeLLM server over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from honeychat.core.llm import (
    MAX_RETRY_AFTER,
    Completion,
    LLMClient,
    LLMError,
    LLMNotConfigured,
    parse_retry_after,
)
from honeychat.core.settings import Settings
from honeychat.testing.fake_llm import FakeLLM, fake_embedding

KEY = "test-key"
MESSAGES = [
    {"role": "system", "content": "You are Luna."},
    {"role": "user", "content": "hello there, how are you"},
]
T = TypeVar("T")


def make_settings(**overrides: Any) -> Settings:
    """Fast, isolated settings: tiny backoff, short timeouts, no .env file."""
    values: dict[str, Any] = {
        "_env_file": None,
        "llm_base_url": None,
        "llm_api_key": KEY,
        "openrouter_api_key": None,
        "llm_max_retries": 2,
        "llm_backoff_base": 0.001,
        "llm_backoff_max": 0.01,
        "llm_connect_timeout": 2.0,
        "llm_read_timeout": 5.0,
        "llm_pool_timeout": 2.0,
        "llm_temperature": 0.7,
    }
    values.update(overrides)
    return Settings(**values)


async def bounded(awaitable: Awaitable[T], seconds: float = 15.0) -> T:
    """Every call under test gets a deadline, so a bug fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, seconds)


async def collect(client: LLMClient, **kwargs: Any) -> tuple[list[str], Completion | None]:
    stream = client.stream(MESSAGES, **kwargs)
    deltas = [delta async for delta in stream]
    return deltas, stream.completion


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeLLM) -> AsyncIterator[LLMClient]:
    async with LLMClient(make_settings(llm_base_url=fake.base_url)) as llm:
        yield llm


def models_asked(fake: FakeLLM) -> list[str | None]:
    return [r.model for r in fake.chat_requests]


# Answers


async def test_complete_returns_the_default_reply_with_usage(
    fake: FakeLLM, client: LLMClient
) -> None:
    result = await bounded(client.complete(MESSAGES, model="m1", max_tokens=50))

    assert result.text == "I hear you: hello there, how are you"
    assert result.model == "m1"
    assert result.finish_reason == "stop"
    # The fake counts whitespace-separated words: 3 + 5 in, 8 out.
    assert result.usage == {"prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16}
    assert result.latency > 0
    (request,) = fake.chat_requests
    assert request.json == {
        "model": "m1",
        "messages": MESSAGES,
        "temperature": 0.7,
        "stream": False,
        "max_tokens": 50,
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "http-referer" not in request.headers
    totals = client.usage_totals["m1"]
    assert (totals.prompt_tokens, totals.completion_tokens, totals.total_tokens) == (8, 8, 16)
    assert (totals.calls, totals.errors) == (1, 0)


async def test_scripted_replies_and_responder(fake: FakeLLM, client: LLMClient) -> None:
    fake.script(["first", "second"])
    fake.responder = lambda body: f"{len(body['messages'])} messages"

    texts = [(await bounded(client.complete(MESSAGES, model="m"))).text for _ in range(3)]

    assert texts == ["first", "second", "2 messages"]
    assert fake.last_messages() == MESSAGES
    assert len(fake.prompts_containing("You are Luna")) == 3
    assert fake.prompts_containing("not in any prompt") == []


async def test_stream_yields_exact_text_and_records_usage(fake: FakeLLM, client: LLMClient) -> None:
    reply = "Hello! Lovely  to see you again.\nHow was your day?"
    fake.script([reply])

    deltas, completion = await bounded(collect(client, model="m1", temperature=0.2))

    assert len(deltas) > 3
    assert "".join(deltas) == reply
    assert completion is not None
    assert completion.text == reply
    assert completion.finish_reason == "stop"
    assert completion.usage == {"prompt_tokens": 8, "completion_tokens": 10, "total_tokens": 18}
    assert client.usage_totals["m1"].total_tokens == 18
    (request,) = fake.chat_requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    assert request.json["temperature"] == 0.2


async def test_leaving_a_stream_early_closes_it(fake: FakeLLM, client: LLMClient) -> None:
    fake.script(["one two three four five six"])
    async with client.stream(MESSAGES, model="m") as stream:
        async for delta in stream:
            assert delta == "one "
            break
    assert stream.completion is None
    # The pool is still usable afterwards.
    result = await bounded(client.complete(MESSAGES, model="m"))
    assert result.text.startswith("I hear you")


# Headers and configuration


async def test_openrouter_mode_sends_attribution_headers(fake: FakeLLM) -> None:
    settings = make_settings(
        openrouter_api_key="sk-or-test",
        llm_api_key=None,
        app_url="https://x.test/bot",
        app_title="Bot Title",
    )
    assert settings.is_openrouter
    # OpenRouter mode, served by the fake: the endpoint is overridden, the mode is not.
    fake.api_key = "sk-or-test"
    async with LLMClient(settings, base_url=fake.base_url) as llm:
        await bounded(llm.complete(MESSAGES, model="m"))

    headers = fake.chat_requests[0].headers
    assert headers["authorization"] == "Bearer sk-or-test"
    assert headers["http-referer"] == "https://x.test/bot"
    assert headers["x-title"] == "Bot Title"


async def test_not_configured_names_the_variables() -> None:
    async with LLMClient(make_settings(llm_api_key=None)) as llm:
        assert not llm.configured
        with pytest.raises(LLMNotConfigured) as caught:
            await llm.complete(MESSAGES, model="m")
        with pytest.raises(LLMNotConfigured):
            llm.stream(MESSAGES, model="m")
    assert "OPENROUTER_API_KEY" in str(caught.value)
    assert "LLM_BASE_URL" in str(caught.value)


async def test_bad_key_is_not_retried_and_names_the_variable(fake: FakeLLM) -> None:
    settings = make_settings(llm_base_url=fake.base_url, llm_api_key="wrong")
    async with LLMClient(settings) as llm:
        with pytest.raises(LLMError) as caught:
            await bounded(llm.complete(MESSAGES, model="a", fallback_models=["b"]))

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert "OPENROUTER_API_KEY" in str(caught.value)
    assert "Incorrect API key" in str(caught.value)
    assert models_asked(fake) == ["a"]


# Retries


async def test_retry_after_is_honoured(fake: FakeLLM, client: LLMClient) -> None:
    fake.fail_next(429, retry_after=1)

    result = await bounded(client.complete(MESSAGES, model="m"))

    assert result.text.startswith("I hear you")
    first, second = fake.chat_requests
    # Backoff alone would wait at most 10 ms; the server asked for a second.
    assert second.at - first.at >= 0.95
    assert client.usage_totals["m"].calls == 2
    assert client.usage_totals["m"].errors == 1


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_error_then_success(fake: FakeLLM, client: LLMClient, status: int) -> None:
    fake.fail_next(status)
    deltas, completion = await bounded(collect(client, model="m"))
    assert "".join(deltas) == "I hear you: hello there, how are you"
    assert completion is not None and completion.model == "m"
    assert models_asked(fake) == ["m", "m"]


async def test_fallback_after_retries_of_a_failing_model(fake: FakeLLM, client: LLMClient) -> None:
    fake.fail_model("model-a", status=503)

    result = await bounded(client.complete(MESSAGES, model="model-a", fallback_models=["model-b"]))

    assert result.model == "model-b"
    assert models_asked(fake) == ["model-a"] * 3 + ["model-b"]  # 1 try + 2 retries
    assert client.usage_totals["model-a"].errors == 3
    assert client.usage_totals["model-b"].calls == 1


async def test_streaming_falls_back_before_any_text(fake: FakeLLM, client: LLMClient) -> None:
    fake.fail_model("model-a", status=500)
    fake.script(["from b"])
    deltas, completion = await bounded(
        collect(client, model="model-a", fallback_models=["model-b"])
    )
    assert "".join(deltas) == "from b"
    assert completion is not None and completion.model == "model-b"


@pytest.mark.parametrize("stream", [False, True])
async def test_empty_completion_moves_to_next_model(
    fake: FakeLLM, client: LLMClient, stream: bool
) -> None:
    fake.empty_next()
    completion: Completion | None
    if stream:
        deltas, completion = await bounded(collect(client, model="a", fallback_models=["b"]))
        assert completion is not None
        assert "".join(deltas) == completion.text
    else:
        completion = await bounded(client.complete(MESSAGES, model="a", fallback_models=["b"]))
    assert completion is not None
    assert completion.model == "b"
    assert completion.text.startswith("I hear you")
    assert models_asked(fake) == ["a", "b"]


@pytest.mark.parametrize("stream", [False, True])
async def test_content_filter_moves_to_next_model(
    fake: FakeLLM, client: LLMClient, stream: bool
) -> None:
    fake.content_filter_next()
    completion: Completion | None
    if stream:
        _, completion = await bounded(collect(client, model="a", fallback_models=["b"]))
        assert completion is not None
    else:
        completion = await bounded(client.complete(MESSAGES, model="a", fallback_models=["b"]))
    assert completion is not None
    assert (completion.model, completion.finish_reason) == ("b", "stop")
    assert models_asked(fake) == ["a", "b"]


async def test_other_client_errors_skip_retries(fake: FakeLLM, client: LLMClient) -> None:
    fake.fail_next(400)
    result = await bounded(client.complete(MESSAGES, model="a", fallback_models=["b"]))
    assert result.model == "b"
    assert models_asked(fake) == ["a", "b"]


async def test_every_model_failing_raises(fake: FakeLLM, client: LLMClient) -> None:
    fake.fail_model("a", status=503)
    fake.fail_model("b", status=429)

    with pytest.raises(LLMError) as caught:
        await bounded(client.complete(MESSAGES, model="a", fallback_models=["b", "a"]))

    error = caught.value
    assert (error.status, error.model, error.retryable) == (429, "b", True)
    assert "a, b" in str(error)
    assert models_asked(fake) == ["a"] * 3 + ["b"] * 3


async def test_read_timeout_is_retried(fake: FakeLLM) -> None:
    settings = make_settings(llm_base_url=fake.base_url, llm_read_timeout=0.3)
    fake.delay_next(2.0)
    async with LLMClient(settings) as llm:
        result = await bounded(llm.complete(MESSAGES, model="m"))
    assert result.text.startswith("I hear you")
    assert models_asked(fake) == ["m", "m"]


async def test_read_timeouts_end_in_an_error(fake: FakeLLM) -> None:
    settings = make_settings(llm_base_url=fake.base_url, llm_read_timeout=0.2, llm_max_retries=1)
    fake.delay = 2.0
    async with LLMClient(settings) as llm:
        with pytest.raises(LLMError) as caught:
            await bounded(collect(llm, model="m"))
    assert caught.value.retryable
    assert caught.value.status is None
    assert "timed out" in str(caught.value)
    assert models_asked(fake) == ["m", "m"]


async def test_unreachable_server_is_an_error() -> None:
    async with FakeLLM() as gone:
        url = gone.base_url
    async with LLMClient(make_settings(llm_base_url=url, llm_max_retries=1)) as llm:
        with pytest.raises(LLMError) as caught:
            await bounded(llm.complete(MESSAGES, model="m"))
    assert caught.value.retryable
    assert "could not be reached" in str(caught.value)
    assert llm.usage_totals["m"].errors == 2


async def test_a_stream_that_breaks_after_text_is_not_repeated(
    fake: FakeLLM, client: LLMClient
) -> None:
    fake.script(["alpha beta gamma delta"])
    fake.break_stream_next(after_chunks=2)
    stream = client.stream(MESSAGES, model="a", fallback_models=["b"])
    received: list[str] = []
    with pytest.raises(LLMError) as caught:
        async for delta in stream:
            received.append(delta)
    assert "".join(received) == "alpha beta "
    assert "broke off" in str(caught.value)
    assert stream.completion is None
    assert models_asked(fake) == ["a"]


# Retry-After parsing


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:07 GMT", now=now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert MAX_RETRY_AFTER == 60.0


# The fake's other endpoints


async def test_fake_embeddings_and_models(fake: FakeLLM) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as http:
        texts = ["I love green tea", "green tea is lovely", "the rocket launched"]
        response = await bounded(http.post("/embeddings", json={"model": "e", "input": texts}))
        small = await bounded(
            http.post("/embeddings", json={"model": "e", "input": "x", "dimensions": 8})
        )
        models = await bounded(http.get("/models"))
    vectors = [item["embedding"] for item in response.json()["data"]]
    assert [len(v) for v in vectors] == [384] * 3
    assert vectors[0] == fake_embedding("I love green tea")

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert len(small.json()["data"][0]["embedding"]) == 8
    assert [m["id"] for m in models.json()["data"]] == ["fake-model"]


def test_fake_runs_in_a_thread_for_sync_callers() -> None:
    fake = FakeLLM.start_in_thread()
    try:
        fake.script(["from the thread"])
        response = httpx.post(
            f"{fake.base_url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=5,
        )
    finally:
        fake.stop()
    assert response.json()["choices"][0]["message"]["content"] == "from the thread"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.base_url}/models", timeout=2)
