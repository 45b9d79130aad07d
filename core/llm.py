"""The LLM client: an OpenAI-compatible chat-completions endpoint with retries and fallback.

One :class:`LLMClient` per process holds one ``httpx.AsyncClient`` (one
connection pool). Every call walks a model chain (the model, then its
fallbacks):

* 408, 409, 425, 429, 5xx and transport errors (connect errors, timeouts,
  dropped connections) are retried up to ``llm_max_retries`` times per model,
  after a full-jitter exponential backoff capped at ``llm_backoff_max``, or
  after the server's ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER`);
  then the next model is tried.
* An empty or whitespace-only completion, a ``content_filter`` finish and any other 4xx (400,
  404, 422...) move to the next model at once.
* 401 and 403 stop everything: a bad key fails for every model.
* A stream retries or falls back only while it has yielded nothing, so text
  is never duplicated.

When the chain is exhausted the caller gets an :class:`LLMError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import Any

import httpx

from honeychat.core.settings import Settings

MAX_RETRY_AFTER = 60.0
"""The longest ``Retry-After`` honoured, in seconds; longer waits are cut to this."""

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
"""4xx statuses worth retrying (every 5xx is retried too)."""

_KEY_VARIABLES = "OPENROUTER_API_KEY (or LLM_API_KEY with LLM_BASE_URL)"


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer from the LLM."""

    text: str
    model: str
    """The model of the chain that produced the answer (after any fallback)."""
    finish_reason: str | None
    usage: dict[str, int]
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (0 if the server sent none)."""
    latency: float
    """Seconds from the first request of the call to the end of the answer."""


@dataclass(slots=True)
class ModelUsage:
    """Running totals for one model.

    ``calls`` counts HTTP requests sent to the model, ``errors`` those that
    failed (including empty and filtered answers).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    calls: int = 0
    errors: int = 0


class LLMError(Exception):
    """The LLM gave no usable answer.

    ``status`` is the last HTTP status seen (``None`` for transport errors),
    ``model`` the last model tried, ``retryable`` whether trying again later
    may help. The message is for logs, not for chat users.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        model: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.model = model
        self.retryable = retryable


class LLMNotConfigured(LLMError):
    """No LLM endpoint is configured."""

    def __init__(self) -> None:
        super().__init__(
            "No LLM is configured: set OPENROUTER_API_KEY, or LLM_BASE_URL for any "
            "OpenAI-compatible server."
        )


class _Action(Enum):
    RETRY = "retry"
    NEXT_MODEL = "next model"
    STOP = "stop"


class _Failure(Exception):
    """One attempt failed; ``action`` says what the chain does next."""

    def __init__(
        self,
        message: str,
        action: _Action,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.action = action
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns ``None`` for a missing or unparsable value; never negative.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def request_headers(settings: Settings) -> dict[str, str]:
    """Headers sent with every request: the key, and OpenRouter's attribution headers.

    ``HTTP-Referer`` and ``X-Title`` are sent only in OpenRouter mode
    (``settings.is_openrouter``); other servers get just the bearer key.
    """
    headers = {"Accept": "application/json"}
    if settings.llm_key:
        headers["Authorization"] = f"Bearer {settings.llm_key}"
    if settings.is_openrouter:
        headers["HTTP-Referer"] = settings.app_url
        headers["X-Title"] = settings.app_title
    return headers


def backoff_seconds(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Seconds before retry number ``attempt + 1``: the server's wish, else full jitter.

    Shared by every client that retries like the chat LLM (the audio endpoints too).
    """
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    ceiling = min(settings.llm_backoff_max, settings.llm_backoff_base * 2**attempt)
    return random.uniform(0, ceiling)


def _status_failure(response: httpx.Response, model: str) -> _Failure:
    """Classify an HTTP error response."""
    status = response.status_code
    detail = _error_detail(response)
    if status in (401, 403):
        return _Failure(
            f"the LLM server refused the API key (HTTP {status}): check {_KEY_VARIABLES}"
            + (f"; server said: {detail}" if detail else ""),
            _Action.STOP,
            status=status,
        )
    message = f"{model} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        retry_after_ms = response.headers.get("retry-after-ms")
        if retry_after_ms:
            with contextlib.suppress(ValueError):
                retry_after = max(0.0, float(retry_after_ms) / 1000)
        return _Failure(message, _Action.RETRY, status=status, retry_after=retry_after)
    return _Failure(message, _Action.NEXT_MODEL, status=status)


def _error_detail(response: httpx.Response) -> str:
    """The provider's error message, if the body has one (short, for logs)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:200]
    return ""


def _body_error(body: dict[str, Any], model: str) -> _Failure | None:
    """An ``{"error": ...}`` object sent with HTTP 200 (OpenRouter does this mid-stream)."""
    error = body.get("error")
    if not error:
        return None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message", error) if isinstance(error, dict) else error
    status = code if isinstance(code, int) else None
    retryable = status is None or status in RETRYABLE_STATUSES or status >= 500
    return _Failure(
        f"{model} reported an error: {message}",
        _Action.RETRY if retryable else _Action.NEXT_MODEL,
        status=status,
    )


def _usage_of(body: dict[str, Any]) -> dict[str, int]:
    raw = body.get("usage")
    raw = raw if isinstance(raw, dict) else {}
    usage = {key: int(raw.get(key) or 0) for key in ("prompt_tokens", "completion_tokens")}
    usage["total_tokens"] = int(raw.get("total_tokens") or sum(usage.values()))
    return usage


def _model_chain(model: str, fallback_models: Sequence[str]) -> list[str]:
    """The model then its fallbacks, without repeats."""
    chain: list[str] = []
    for name in (model, *fallback_models):
        if name and name not in chain:
            chain.append(name)
    if not chain:
        raise ValueError("a model name is required")
    return chain


class CompletionStream:
    """The text deltas of one streamed answer; :attr:`completion` is set once it ends.

    Iterate it once (``async for delta in stream``). Leaving the loop early
    closes the connection; so does :meth:`aclose` or ``async with``.
    """

    def __init__(self) -> None:
        self.completion: Completion | None = None
        self._deltas: AsyncGenerator[str, None] | None = None

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> str:
        if self._deltas is None:
            raise StopAsyncIteration
        return await self._deltas.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release its connection."""
        if self._deltas is not None:
            await self._deltas.aclose()

    async def __aenter__(self) -> CompletionStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(slots=True)
class _Attempt:
    """What one streamed attempt has produced so far."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


class LLMClient:
    """Chat completions against the configured OpenAI-compatible endpoint.

    ``base_url`` overrides the endpoint from ``settings`` while keeping its
    mode (key, OpenRouter headers): useful for an OpenRouter-compatible proxy
    and for tests. ``transport`` is handed to ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint = (base_url or settings.llm_endpoint or "").rstrip("/") or None
        self.usage_totals: dict[str, ModelUsage] = {}
        self._http = httpx.AsyncClient(
            base_url=self.endpoint or "",
            headers=request_headers(settings),
            timeout=httpx.Timeout(
                connect=settings.llm_connect_timeout,
                read=settings.llm_read_timeout,
                # Request bodies are small; writing one takes as long as connecting.
                write=settings.llm_connect_timeout,
                pool=settings.llm_pool_timeout,
            ),
            transport=transport,
        )

    @property
    def configured(self) -> bool:
        """Whether an endpoint is configured (calls raise :class:`LLMNotConfigured` otherwise)."""
        return self.endpoint is not None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # Public calls

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        fallback_models: Sequence[str] = (),
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """One whole answer, from the first model of the chain that gives one."""
        chain = self._start(model, fallback_models)
        started = time.monotonic()
        last: _Failure | None = None
        for name in chain:
            for attempt in range(self.settings.llm_max_retries + 1):
                body = self._body(messages, name, max_tokens, temperature, stream=False)
                try:
                    text, finish, usage = await self._complete_once(body, name)
                except _Failure as failure:
                    last = failure
                    if not await self._after_failure(failure, name, attempt):
                        break
                    continue
                self._record_success(name, usage)
                return Completion(text, name, finish, usage, time.monotonic() - started)
        raise self._exhausted(chain, last)

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        fallback_models: Sequence[str] = (),
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> CompletionStream:
        """A streamed answer: iterate the returned object for text deltas.

        Raises :class:`LLMNotConfigured` at once; other failures surface as
        :class:`LLMError` while iterating. After the loop ends,
        ``.completion`` holds the whole answer with its usage.
        """
        chain = self._start(model, fallback_models)
        result = CompletionStream()
        result._deltas = self._stream_chain(result, chain, messages, max_tokens, temperature)
        return result

    # Internals

    def _start(self, model: str, fallback_models: Sequence[str]) -> list[str]:
        if self.endpoint is None:
            raise LLMNotConfigured()
        return _model_chain(model, fallback_models)

    def _body(
        self,
        messages: list[dict[str, Any]],
        model: str,
        max_tokens: int | None,
        temperature: float | None,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": self.settings.llm_temperature if temperature is None else temperature,
            "stream": stream,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _usage(self, model: str) -> ModelUsage:
        return self.usage_totals.setdefault(model, ModelUsage())

    def _record_success(self, model: str, usage: dict[str, int]) -> None:
        totals = self._usage(model)
        totals.prompt_tokens += usage.get("prompt_tokens", 0)
        totals.completion_tokens += usage.get("completion_tokens", 0)
        totals.total_tokens += usage.get("total_tokens", 0)

    async def _after_failure(self, failure: _Failure, model: str, attempt: int) -> bool:
        """Count a failed attempt; wait and return True when the same model should retry."""
        self._usage(model).errors += 1
        if failure.action is _Action.STOP:
            raise LLMError(str(failure), status=failure.status, model=model) from failure
        if failure.action is not _Action.RETRY or attempt >= self.settings.llm_max_retries:
            return False
        await asyncio.sleep(self._backoff(attempt, failure.retry_after))
        return True

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return backoff_seconds(self.settings, attempt, retry_after)

    @staticmethod
    def _exhausted(chain: list[str], last: _Failure | None) -> LLMError:
        reason = str(last) if last else "no attempt was made"
        retryable = last is not None and last.action is _Action.RETRY
        return LLMError(
            f"no model answered ({', '.join(chain)}); last error: {reason}",
            status=last.status if last else None,
            model=chain[-1],
            retryable=retryable,
        )

    async def _complete_once(
        self, body: dict[str, Any], model: str
    ) -> tuple[str, str | None, dict[str, int]]:
        """One non-streaming request: the text, finish reason and usage, or a :class:`_Failure`."""
        self._usage(model).calls += 1
        try:
            response = await self._http.post("/chat/completions", json=body)
        except httpx.TransportError as exc:
            raise _transport_failure(exc, model) from exc
        if response.status_code != 200:
            raise _status_failure(response, model)
        try:
            data = response.json()
        except ValueError as exc:
            raise _Failure(f"{model} sent a body that is not JSON", _Action.RETRY) from exc
        if not isinstance(data, dict):
            raise _Failure(f"{model} sent an unexpected body", _Action.RETRY)
        if (error := _body_error(data, model)) is not None:
            raise error
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        message = choice.get("message") if isinstance(choice, dict) else None
        text = message.get("content") if isinstance(message, dict) else None
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        _check_answer(text or "", finish, model)
        return str(text), finish, _usage_of(data)

    async def _stream_chain(
        self,
        result: CompletionStream,
        chain: list[str],
        messages: list[dict[str, Any]],
        max_tokens: int | None,
        temperature: float | None,
    ) -> AsyncGenerator[str, None]:
        started = time.monotonic()
        last: _Failure | None = None
        for name in chain:
            for attempt_number in range(self.settings.llm_max_retries + 1):
                body = self._body(messages, name, max_tokens, temperature, stream=True)
                attempt = _Attempt()
                try:
                    async with contextlib.aclosing(
                        self._stream_once(body, name, attempt)
                    ) as deltas:
                        async for delta in deltas:
                            yield delta
                except _Failure as failure:
                    if attempt.parts:
                        # Text already went out: retrying would repeat it.
                        self._usage(name).errors += 1
                        raise LLMError(
                            f"the answer from {name} broke off: {failure}",
                            status=failure.status,
                            model=name,
                            retryable=failure.action is _Action.RETRY,
                        ) from failure
                    last = failure
                    if not await self._after_failure(failure, name, attempt_number):
                        break
                    continue
                usage = attempt.usage or _usage_of({})
                self._record_success(name, usage)
                result.completion = Completion(
                    "".join(attempt.parts),
                    name,
                    attempt.finish_reason,
                    usage,
                    time.monotonic() - started,
                )
                return
        raise self._exhausted(chain, last)

    async def _stream_once(
        self, body: dict[str, Any], model: str, attempt: _Attempt
    ) -> AsyncGenerator[str, None]:
        """One streaming request: yields deltas, fills ``attempt``, raises :class:`_Failure`."""
        self._usage(model).calls += 1
        try:
            async with self._http.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_failure(response, model)
                ended = False
                held = ""
                async for event in _sse_events(response, model):
                    if event is None:
                        ended = True
                        break
                    if (error := _body_error(event, model)) is not None:
                        raise error
                    if isinstance(event.get("usage"), dict):
                        attempt.usage = _usage_of(event)
                    for choice in event.get("choices") or []:
                        if not isinstance(choice, dict):
                            continue
                        delta = choice.get("delta")
                        content = delta.get("content") if isinstance(delta, dict) else None
                        if isinstance(content, str) and content:
                            held += content
                            # Leading whitespace is held back, so a blank answer can
                            # still fall back to the next model.
                            if attempt.parts or held.strip():
                                attempt.parts.append(held)
                                yield held
                                held = ""
                        if choice.get("finish_reason"):
                            attempt.finish_reason = choice["finish_reason"]
                if not ended and attempt.finish_reason is None:
                    raise _Failure(f"the stream from {model} ended early", _Action.RETRY)
        except httpx.TransportError as exc:
            raise _transport_failure(exc, model) from exc
        if not attempt.parts:
            _check_answer("", attempt.finish_reason, model)


def _check_answer(text: str, finish_reason: str | None, model: str) -> None:
    """Reject an empty or filtered answer: the next model gets a chance."""
    if finish_reason == "content_filter":
        raise _Failure(f"{model} withheld its answer (content filter)", _Action.NEXT_MODEL)
    if not text.strip():
        raise _Failure(f"{model} sent an empty answer", _Action.NEXT_MODEL)


def _transport_failure(exc: httpx.TransportError, model: str) -> _Failure:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _Failure(f"{model} {kind} ({detail})", _Action.RETRY)


async def _sse_events(response: httpx.Response, model: str) -> AsyncIterator[dict[str, Any] | None]:
    """Parsed ``data:`` events of a Server-Sent Events body; ``None`` for ``[DONE]``.

    Comment lines (``: keep-alive``, sent by OpenRouter) are skipped.
    """
    data: list[str] = []
    lines = response.aiter_lines()
    while True:
        line = await anext(lines, None)
        if line is not None and line.strip():
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            continue  # comments and other fields (event:, id:) carry nothing we use
        if data:  # a blank line, or the end of the body, completes an event
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                yield None
                return
            try:
                event = json.loads(payload)
            except ValueError as exc:
                raise _Failure(f"{model} sent a malformed stream event", _Action.RETRY) from exc
            if isinstance(event, dict):
                yield event
        if line is None:
            return
