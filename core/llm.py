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

With a :class:`ToolLoop`, a call runs the OpenAI tools loop: the request
offers the tools; when the answer asks for tool calls (collected from the
stream's ``tool_calls`` deltas, or the whole message), they run, their
results go back as ``role: tool`` messages and the model is asked again, at
most ``max_steps`` times; the last request forbids further calls
(``tool_choice: none``). Each request of the loop has its own retries and
fallbacks. A model whose provider rejects ``tools`` (a 400/404/422 that
mentions tools) is asked again at once without them, and remembered: it
gets no tools (nor tool messages from history) again in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import Any

import httpx

from honeychat.core.settings import Settings
from honeychat.core.tools import ToolCall, ToolResult, call_message, tool_message

log = logging.getLogger(__name__)

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
    tool_results: tuple[ToolResult, ...] = ()
    """Every tool call of the answer with its result, in order (with a :class:`ToolLoop`)."""
    tool_steps: int = 0
    """Rounds of tool calls the answer took."""


ToolRunner = Callable[[list[ToolCall]], Awaitable[list[ToolResult]]]
"""Runs one step's calls and returns one result per call, in order."""


@dataclass(frozen=True, slots=True)
class ToolLoop:
    """The tools a call may use: their OpenAI specs, how to run calls, and the limits."""

    specs: list[dict[str, Any]]
    run: ToolRunner
    max_steps: int = 4
    result_max_chars: int = 4000
    """A longer tool output is cut before the model reads it."""


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
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Tool calls being assembled from deltas, by their ``index``."""

    def add_call_delta(self, delta: dict[str, Any]) -> None:
        """Merge one streamed ``tool_calls`` fragment (id and name once, arguments in pieces)."""
        index = delta.get("index")
        if not isinstance(index, int):
            known = [i for i, c in self.calls.items() if delta.get("id") and c["id"] == delta["id"]]
            index = known[0] if known else len(self.calls)
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        found = delta.get("function")
        function: dict[str, Any] = found if isinstance(found, dict) else {}
        if delta.get("id"):
            call["id"] = str(delta["id"])
        if function.get("name"):
            call["name"] += str(function["name"])
        if isinstance(function.get("arguments"), str):
            call["arguments"] += function["arguments"]

    def tool_calls(self, step: int) -> list[ToolCall]:
        return _calls(list(self.calls.values()), step)


def _calls(raw: list[dict[str, Any]], step: int) -> list[ToolCall]:
    """Tool calls with a name; a missing id gets one (some servers send none)."""
    return [
        ToolCall(
            str(c.get("id") or f"call_{step}_{i}"), str(c["name"]), str(c.get("arguments") or "")
        )
        for i, c in enumerate(raw)
        if c.get("name")
    ]


def _message_calls(message: dict[str, Any], step: int) -> list[ToolCall]:
    """The tool calls of a whole (non-streamed) assistant message."""
    raw = []
    for entry in message.get("tool_calls") or []:
        if not isinstance(entry, dict):
            continue
        found = entry.get("function")
        function: dict[str, Any] = found if isinstance(found, dict) else {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments) if arguments is not None else ""
        raw.append({"id": entry.get("id"), "name": function.get("name"), "arguments": arguments})
    return _calls(raw, step)


@dataclass(frozen=True, slots=True)
class _Request:
    """What one request of a call sends, whichever model of the chain gets it."""

    messages: list[dict[str, Any]]
    max_tokens: int | None
    temperature: float | None
    tools: list[dict[str, Any]]
    tool_choice: str
    step: int


@dataclass(slots=True)
class _Step:
    """One request of a call (one step of the tools loop), whichever model answered it."""

    text: str = ""
    model: str = ""
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)


STEP_BREAK = "\n\n"
"""Between text the model wrote before a tool call and the text after it."""


def _finished(
    text: str,
    step: _Step,
    usage: dict[str, int],
    started: float,
    results: list[ToolResult],
    steps: int,
) -> Completion:
    """The completion of a whole call, ``step`` being its last request."""
    return Completion(
        text,
        step.model,
        step.finish_reason,
        usage,
        time.monotonic() - started,
        tuple(results),
        steps,
    )


def _rejects_tools(failure: _Failure) -> bool:
    """Whether a failure is a provider saying the model cannot take ``tools``."""
    return failure.status in (400, 404, 422) and "tool" in str(failure).lower()


def _without_tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` minus tool calls and tool results, for a model that gets no tools."""
    kept = []
    for message in messages:
        if message.get("role") == "tool":
            continue
        if message.get("tool_calls"):
            if not message.get("content"):
                continue
            message = {k: v for k, v in message.items() if k != "tool_calls"}
        kept.append(message)
    return kept


def _add_usage(total: dict[str, int], usage: dict[str, int]) -> dict[str, int]:
    return {
        k: total.get(k, 0) + usage.get(k, 0)
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    }


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
        self.no_tools: set[str] = set()
        """Models whose provider rejected ``tools``: they are asked without them."""
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
        tools: ToolLoop | None = None,
    ) -> Completion:
        """One whole answer, from the first model of the chain that gives one.

        With ``tools``, the tools loop runs first (see the module docstring).
        """
        chain = self._start(model, fallback_models)
        started = time.monotonic()
        conversation = list(messages)
        usage: dict[str, int] = {}
        results: list[ToolResult] = []
        texts: list[str] = []
        step_number = 0
        while True:
            offer, choice = self._offer(tools, step_number)
            request = _Request(conversation, max_tokens, temperature, offer, choice, step_number)
            step = await self._complete_step(chain, request)
            usage = _add_usage(usage, step.usage)
            texts.append(step.text)
            if not (step.calls and tools is not None and choice == "auto"):
                text = STEP_BREAK.join(t.strip() for t in texts if t.strip())
                return _finished(text, step, usage, started, results, step_number)
            chain = chain[chain.index(step.model) :]
            results += await self._run_tools(tools, conversation, step)
            step_number += 1

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        fallback_models: Sequence[str] = (),
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: ToolLoop | None = None,
    ) -> CompletionStream:
        """A streamed answer: iterate the returned object for text deltas.

        Raises :class:`LLMNotConfigured` at once; other failures surface as
        :class:`LLMError` while iterating. After the loop ends,
        ``.completion`` holds the whole answer with its usage. With
        ``tools``, the tools loop runs inside the stream: tool calls are
        collected from the deltas and run between requests; any text the
        model writes in any step streams out.
        """
        chain = self._start(model, fallback_models)
        result = CompletionStream()
        result._deltas = self._stream_loop(result, chain, messages, max_tokens, temperature, tools)
        return result

    # Internals

    def _start(self, model: str, fallback_models: Sequence[str]) -> list[str]:
        if self.endpoint is None:
            raise LLMNotConfigured()
        return _model_chain(model, fallback_models)

    @staticmethod
    def _offer(tools: ToolLoop | None, step: int) -> tuple[list[dict[str, Any]], str]:
        """The tools a step offers and its ``tool_choice`` (``none`` on the last step)."""
        if tools is None or not tools.specs or tools.max_steps <= 0:
            return [], ""
        return tools.specs, "auto" if step < tools.max_steps else "none"

    async def _run_tools(
        self, tools: ToolLoop, conversation: list[dict[str, Any]], step: _Step
    ) -> list[ToolResult]:
        """Run a step's calls and add the request and the results to ``conversation``."""
        conversation.append(call_message(step.calls, step.text))
        results = await tools.run(step.calls)
        for call, result in zip(step.calls, results, strict=True):
            output = result.output
            if len(output) > tools.result_max_chars:
                output = output[: tools.result_max_chars] + "\n[…cut: the output was longer]"
            conversation.append(tool_message(call.id, call.name, output))
        return results

    def _body(self, request: _Request, model: str, *, stream: bool) -> dict[str, Any]:
        tools, messages, temperature = request.tools, request.messages, request.temperature
        offer = bool(tools) and model not in self.no_tools
        body: dict[str, Any] = {
            "model": model,
            "messages": messages if offer else _without_tool_messages(messages),
            "temperature": self.settings.llm_temperature if temperature is None else temperature,
            "stream": stream,
        }
        if offer:
            body["tools"] = tools
            body["tool_choice"] = request.tool_choice or "auto"
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _try_again(
        self, failure: _Failure, body: dict[str, Any], model: str, attempt: int
    ) -> int | None:
        """After a failed request: the attempt number to ask ``model`` again with, else None.

        A model that rejects ``tools`` is asked again at once, without them
        (that try does not count); other failures follow :meth:`_after_failure`.
        """
        if "tools" in body and _rejects_tools(failure):
            self._usage(model).errors += 1
            self.no_tools.add(model)
            log.warning("%s does not take tools (%s); asking it without them now", model, failure)
            return attempt
        if not await self._after_failure(failure, model, attempt):
            return None
        return attempt + 1

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

    async def _complete_step(self, chain: list[str], request: _Request) -> _Step:
        """One non-streamed request of a call, through the model chain."""
        last: _Failure | None = None
        for name in chain:
            attempt = 0
            while True:
                body = self._body(request, name, stream=False)
                try:
                    step = await self._complete_once(body, name, request.step)
                except _Failure as failure:
                    last = failure
                    again = await self._try_again(failure, body, name, attempt)
                    if again is None:
                        break
                    attempt = again
                    continue
                self._record_success(name, step.usage)
                return step
        raise self._exhausted(chain, last)

    async def _complete_once(self, body: dict[str, Any], model: str, step_number: int) -> _Step:
        """One non-streaming request: its text or tool calls, or a :class:`_Failure`."""
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
        message = message if isinstance(message, dict) else {}
        text = message.get("content")
        text = text if isinstance(text, str) else ""
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        calls = _message_calls(message, step_number) if "tools" in body else []
        if not calls:
            _check_answer(text, finish, model)
        return _Step(text, model, finish, _usage_of(data), calls)

    async def _stream_loop(
        self,
        result: CompletionStream,
        chain: list[str],
        messages: list[dict[str, Any]],
        max_tokens: int | None,
        temperature: float | None,
        tools: ToolLoop | None,
    ) -> AsyncGenerator[str, None]:
        """The streamed call: one streamed request per step of the tools loop."""
        started = time.monotonic()
        conversation = list(messages)
        usage: dict[str, int] = {}
        results: list[ToolResult] = []
        parts: list[str] = []
        step_number = 0
        while True:
            offer, choice = self._offer(tools, step_number)
            request = _Request(conversation, max_tokens, temperature, offer, choice, step_number)
            step = _Step()
            text_before = bool(parts)
            async with contextlib.aclosing(self._stream_chain(step, chain, request)) as deltas:
                async for delta in deltas:
                    if text_before and not (parts[-1][-1:].isspace() or delta[:1].isspace()):
                        # Words from before a tool call end a paragraph; the answer starts one.
                        parts.append(STEP_BREAK)
                        yield STEP_BREAK
                    text_before = False
                    parts.append(delta)
                    yield delta
            usage = _add_usage(usage, step.usage)
            if not (step.calls and tools is not None and choice == "auto"):
                text = "".join(parts)
                result.completion = _finished(text, step, usage, started, results, step_number)
                return
            chain = chain[chain.index(step.model) :]
            results += await self._run_tools(tools, conversation, step)
            step_number += 1

    async def _stream_chain(
        self, step: _Step, chain: list[str], request: _Request
    ) -> AsyncGenerator[str, None]:
        """One streamed request of a call, through the model chain; fills ``step``."""
        last: _Failure | None = None
        for name in chain:
            attempt_number = 0
            while True:
                body = self._body(request, name, stream=True)
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
                    again = await self._try_again(failure, body, name, attempt_number)
                    if again is None:
                        break
                    attempt_number = again
                    continue
                step.usage = attempt.usage or _usage_of({})
                self._record_success(name, step.usage)
                step.text = "".join(attempt.parts)
                step.model = name
                step.finish_reason = attempt.finish_reason
                step.calls = attempt.tool_calls(request.step) if "tools" in body else []
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
                        delta = delta if isinstance(delta, dict) else {}
                        for call in delta.get("tool_calls") or []:
                            if isinstance(call, dict):
                                attempt.add_call_delta(call)
                        content = delta.get("content")
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
        if not attempt.parts and not attempt.calls:
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
