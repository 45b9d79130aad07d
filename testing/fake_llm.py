"""A fake OpenAI-compatible LLM server on 127.0.0.1, for tests and demos.

It speaks the real wire protocol over real HTTP: ``POST /v1/chat/completions``
(plain JSON or Server-Sent Events when ``"stream": true``, with image
content parts), ``POST /v1/embeddings``, ``GET /v1/models``, and the audio
endpoints: ``POST /v1/audio/transcriptions`` (OpenAI's multipart upload, or
OpenRouter's JSON with base64 ``input_audio``; answers ``{"text": ...}``) and ``POST /v1/audio/speech`` (JSON, answers audio bytes). Point any OpenAI-compatible
client at :attr:`FakeLLM.base_url`.

Replies are deterministic. By default the server acknowledges the last user
message (``"I hear you: <text>"``); :meth:`FakeLLM.script` queues exact
replies and :attr:`FakeLLM.responder` computes one per request. A chat
request carrying images is answered ``"I see: <labels>. <text>"`` (labels of
:func:`honeychat.testing.media.png` images). Transcription hears the words of
:func:`honeychat.testing.media.voice_note` bytes (or :meth:`FakeLLM.script_transcripts`);
audio failures are injected with :meth:`FakeLLM.fail_audio_next` and :attr:`FakeLLM.audio_delay`. Failures are
injected per request (:meth:`FakeLLM.fail_next`, :meth:`FakeLLM.empty_next`,
:meth:`FakeLLM.content_filter_next`, :meth:`FakeLLM.break_stream_next`,
:meth:`FakeLLM.delay_next`) or per model (:meth:`FakeLLM.fail_model`). Every
request is recorded in :attr:`FakeLLM.requests`.

Two ways to run it::

    async with FakeLLM() as llm:          # inside a running event loop
        ...

    llm = FakeLLM.start_in_thread()       # own loop in a daemon thread,
    ...                                   # for sync code and subprocesses
    llm.stop()

Configuration methods are thread-safe, so a test may script a server that
runs in a background thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from aiohttp import BodyPartReader as aiohttp_BodyPartReader
from aiohttp import web

from honeychat.testing.media import sample_label


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """A scripted answer that asks for tool calls instead of (or after) some text.

    ``calls`` are ``(name, arguments)`` pairs; arguments are a dict (sent as
    JSON) or a raw string (to send broken JSON). Streamed, each call's
    arguments are split across several chunks as OpenAI streams them, and
    two calls are two ``index`` values of the same answer.
    """

    calls: tuple[tuple[str, dict[str, Any] | str], ...]
    text: str = ""

    def wire_calls(self) -> list[dict[str, Any]]:
        """The calls in OpenAI's ``tool_calls`` form, with fresh ids."""
        return [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args in self.calls
        ]


Answer = str | ToolCalls
Responder = Callable[[dict[str, Any]], Answer]
"""Computes a reply (text, or :class:`ToolCalls`) from the parsed request body."""

FaultKind = Literal["error", "empty", "content_filter", "break", "delay"]

_REPLY_PREVIEW_CHARS = 60
_WORD = re.compile(r"\w+")
_CHUNK = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names are lower-cased."""
    json: Any
    """The parsed JSON body, or ``None`` when there was no (valid) body."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    multipart: dict[str, Any] | None = None
    """For multipart requests: ``{"fields": {name: text}, "files": {name: (filename,
    content_type, bytes)}}``."""

    @property
    def model(self) -> str | None:
        """The ``model`` field of the body, if any."""
        if isinstance(self.json, dict):
            value = self.json.get("model")
            return value if isinstance(value, str) else None
        return None

    @property
    def form(self) -> dict[str, str]:
        """The text fields of a multipart request (``/audio/transcriptions``)."""
        return dict(self.multipart.get("fields", {})) if self.multipart else {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a chat request (empty for other requests)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return list(self.json["messages"])
        return []


@dataclass(slots=True)
class _Fault:
    kind: FaultKind
    times: int
    status: int = 500
    retry_after: float | str | None = None
    seconds: float = 0.0
    after_chunks: int = 1


@dataclass(slots=True)
class _State:
    """Everything a test may change while the server runs (guarded by a lock)."""

    script: deque[Answer] = field(default_factory=deque)
    faults: deque[_Fault] = field(default_factory=deque)
    model_faults: dict[str, _Fault] = field(default_factory=dict)


class FakeLLM:
    """A fake OpenAI-compatible server: see the module docstring.

    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>``
    get a 401, like a real provider given a bad key. ``embedding_dim`` is the
    default length of embedding vectors (a request's ``dimensions`` wins).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        embedding_dim: int = 384,
        models: Iterable[str] = ("fake-model",),
    ) -> None:
        self.api_key = api_key
        self.embedding_dim = embedding_dim
        self.models = list(models)
        self.requests: list[RecordedRequest] = []
        self.responder: Responder | None = None
        self.delay: float = 0.0
        """Seconds to wait before answering every chat request (for timeout tests)."""
        self.chunk_delay: float = 0.0
        """Seconds to wait between two streamed chunks."""
        self.keepalive_interval: float = 0.0
        """While a streamed request waits out its delay, send an SSE comment
        (``: keep-alive``, as OpenRouter does) this often (0: never)."""
        self.toolless_models: set[str] = set()
        """Models that answer a request carrying ``tools`` with HTTP 400, like a provider
        serving a model without function calling."""
        self.audio_delay: float = 0.0
        """Seconds to wait before answering every audio request (for timeout tests)."""
        self.speech_audio: bytes | None = None
        """What ``/audio/speech`` answers (default: a few bytes that start like the format)."""
        self._audio_faults: deque[tuple[int, str | None, str | None]] = deque()
        self._transcripts: deque[str] = deque()
        self._state = _State()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # Lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the OpenAI-style base URL."""
        if self._port is None:
            raise RuntimeError("FakeLLM is not running")
        return f"http://127.0.0.1:{self._port}/v1"

    async def start(self) -> FakeLLM:
        """Start serving on a free port of 127.0.0.1 in the running event loop."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        # handler_cancellation: a client that gave up (timeout) cancels its
        # delayed handler, so shutdown never waits for it.
        runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def aclose(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @classmethod
    def start_in_thread(cls, *, timeout: float = 10.0, **kwargs: Any) -> FakeLLM:
        """Start a server with its own event loop in a daemon thread; stop it with :meth:`stop`."""
        fake = cls(**kwargs)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(fake.start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(fake.aclose())
            loop.close()

        thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("FakeLLM did not start in time")
        if errors:
            raise RuntimeError("FakeLLM could not start") from errors[0]
        fake._thread, fake._thread_loop = thread, loop
        return fake

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread` and join its thread."""
        if self._thread is None or self._thread_loop is None:
            raise RuntimeError("stop() is for start_in_thread(); use 'await aclose()' instead")
        self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
        self._thread.join(timeout)
        self._thread = self._thread_loop = None

    # Scripting

    def script(self, replies: Iterable[Answer]) -> None:
        """Queue exact replies (text or :class:`ToolCalls`), used in order before the
        responder and the default."""
        with self._lock:
            self._state.script.extend(replies)

    def fail_next(
        self, status: int = 500, *, retry_after: float | str | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` chat requests with an HTTP error.

        ``retry_after`` becomes the ``Retry-After`` header (seconds or an HTTP date).
        """
        self._queue(_Fault("error", times, status=status, retry_after=retry_after))

    def empty_next(self, times: int = 1) -> None:
        """Answer the next ``times`` chat requests with an empty completion."""
        self._queue(_Fault("empty", times))

    def content_filter_next(self, times: int = 1) -> None:
        """Answer the next ``times`` chat requests with ``finish_reason: content_filter``."""
        self._queue(_Fault("content_filter", times))

    def break_stream_next(self, after_chunks: int = 1, times: int = 1) -> None:
        """Cut the next ``times`` streamed replies after ``after_chunks`` text chunks.

        Like every queued fault it is taken by the next chat request; a
        non-streamed request takes it and is answered normally.
        """
        self._queue(_Fault("break", times, after_chunks=after_chunks))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` chat requests."""
        self._queue(_Fault("delay", times, seconds=seconds))

    def fail_model(
        self, model: str, status: int = 503, *, retry_after: float | str | None = None
    ) -> None:
        """Answer every chat request for ``model`` with an HTTP error until :meth:`clear_faults`."""
        with self._lock:
            self._state.model_faults[model] = _Fault(
                "error", -1, status=status, retry_after=retry_after
            )

    def clear_faults(self) -> None:
        """Forget every queued and per-model failure."""
        with self._lock:
            self._state.faults.clear()
            self._state.model_faults.clear()

    def fail_audio_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        endpoint: str | None = None,
        model: str | None = None,
    ) -> None:
        """Answer the next ``times`` audio requests with an HTTP error.

        ``endpoint``: ``"transcriptions"`` or ``"speech"`` only; ``None``: either.
        ``model``: only requests for this model (``None``: any).
        """
        with self._lock:
            self._audio_faults.extend([(status, endpoint, model)] * times)

    def script_transcripts(self, texts: Iterable[str]) -> None:
        """Queue exact transcripts, used before the words embedded in the audio."""
        with self._lock:
            self._transcripts.extend(texts)

    def _queue(self, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._state.faults.append(fault)

    # Inspection

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completion requests, oldest first."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def last_messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of the latest chat request."""
        chats = self.chat_requests
        if not chats:
            raise AssertionError("FakeLLM has received no chat request")
        return chats[-1].messages

    @property
    def transcription_requests(self) -> list[RecordedRequest]:
        """The recorded ``/audio/transcriptions`` requests, oldest first."""
        return [r for r in self.requests if r.path.endswith("/audio/transcriptions")]

    @property
    def speech_requests(self) -> list[RecordedRequest]:
        """The recorded ``/audio/speech`` requests, oldest first."""
        return [r for r in self.requests if r.path.endswith("/audio/speech")]

    def prompts_containing(self, text: str) -> list[RecordedRequest]:
        """Chat requests in which some message's content contains ``text``."""
        return [
            r
            for r in self.chat_requests
            if any(text in _content_text(m.get("content")) for m in r.messages)
        ]

    # Handlers

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
        return record

    def _unauthorized(self, record: RecordedRequest) -> web.Response | None:
        if self.api_key is None:
            return None
        if record.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_api_key")

    def _take_fault(self, model: str) -> _Fault | None:
        with self._lock:
            if model in self._state.model_faults:
                return self._state.model_faults[model]
            if not self._state.faults:
                return None
            fault = self._state.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._state.faults.popleft()
            return fault

    def _reply_for(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self._state.script:
                return self._state.script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self._default_reply(body)

    def _default_reply(self, body: dict[str, Any]) -> str:
        last = next(
            (
                m
                for m in reversed(body["messages"])
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            {},
        )
        images = _image_labels(last.get("content"))
        if images:
            text = " ".join(_content_text(last.get("content")).split())
            return f"I see: {'; '.join(images)}. {text[:_REPLY_PREVIEW_CHARS]}".strip()
        last_user = next(
            (
                _content_text(m.get("content"))
                for m in reversed(body["messages"])
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        preview = " ".join(last_user.split())
        if len(preview) > _REPLY_PREVIEW_CHARS:
            preview = preview[: _REPLY_PREVIEW_CHARS - 3] + "..."
        return f"I hear you: {preview}"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        body = record.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "The body must be JSON with a 'messages' list.", "invalid_request")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _error(400, "'model' is required.", "invalid_request")
        model: str = body["model"]
        if body.get("tools") and model in self.toolless_models:
            return _error(400, f"{model} does not support tools.", "invalid_request")
        if (problem := _tool_message_problem(body["messages"])) is not None:
            return _error(400, problem, "invalid_request")

        fault = self._take_fault(model)
        delay = self.delay + (fault.seconds if fault and fault.kind == "delay" else 0.0)
        early: web.StreamResponse | None = None
        if delay > 0 and self.keepalive_interval > 0 and body.get("stream"):
            early = await self._keep_alive(request, delay)
        elif delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind == "error":
            return _error(
                fault.status,
                f"Injected failure {fault.status}.",
                "injected",
                retry_after=fault.retry_after,
            )

        finish_reason = "stop"
        if fault is not None and fault.kind == "empty":
            text = ""
        elif fault is not None and fault.kind == "content_filter":
            text, finish_reason = "", "content_filter"
        else:
            answer = self._reply_for(body)
            if isinstance(answer, ToolCalls):
                if body.get("tools") and body.get("tool_choice") != "none":
                    return await self._tool_calls(request, body, model, answer, early)
                answer = answer.text or self._default_reply(body)
            text = answer
        usage = {
            "prompt_tokens": sum(
                len(_content_text(m.get("content")).split())
                for m in body["messages"]
                if isinstance(m, dict)
            ),
            "completion_tokens": len(text.split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

        if not body.get("stream"):
            return web.json_response(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": usage,
                }
            )
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        break_after = fault.after_chunks if fault is not None and fault.kind == "break" else None
        return await self._stream(
            request,
            model,
            text,
            finish_reason,
            usage if include_usage else None,
            break_after,
            response=early,
        )

    async def _tool_calls(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        answer: ToolCalls,
        early: web.StreamResponse | None,
    ) -> web.StreamResponse:
        """Answer with tool calls: one message, or chunks with the arguments in pieces."""
        calls = answer.wire_calls()
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": answer.text or None,
                                "tool_calls": calls,
                            },
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": usage,
                }
            )
        response = early
        if response is None:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            await response.write(_chunk(completion_id, 0, model, delta, finish))

        await send({"role": "assistant", "content": None})
        for piece in _CHUNK.findall(answer.text):
            await send({"content": piece})
        for index, call in enumerate(calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            await send(
                {
                    "tool_calls": [
                        {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                    ]
                }
            )
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 5):
                piece = {"index": index, "function": {"arguments": arguments[start : start + 5]}}
                await send({"tool_calls": [piece]})
        await send({}, "tool_calls")
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return await _end_stream(response, completion_id, 0, model, usage if wants_usage else None)

    async def _keep_alive(self, request: web.Request, seconds: float) -> web.StreamResponse:
        """Start an SSE body and send only comments for ``seconds``."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await response.write(b": keep-alive\n\n")
            await asyncio.sleep(min(left, self.keepalive_interval))
        return response

    async def _stream(
        self,
        request: web.Request,
        model: str,
        text: str,
        finish_reason: str,
        usage: dict[str, int] | None,
        break_after: int | None,
        *,
        response: web.StreamResponse | None = None,
    ) -> web.StreamResponse:
        if response is None:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        async def send(delta: dict[str, Any], finish: str | None) -> None:
            await response.write(_chunk(completion_id, created, model, delta, finish))

        await send({"role": "assistant", "content": ""}, None)
        for number, piece in enumerate(_CHUNK.findall(text)):
            if break_after is not None and number >= break_after:
                # Drop the connection mid-body: the client sees an incomplete chunked read.
                if request.transport is not None:
                    request.transport.abort()
                return response
            if self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            await send({"content": piece}, None)
        await send({}, finish_reason)
        return await _end_stream(response, completion_id, created, model, usage)

    async def _embeddings(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        body = record.json
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return _error(400, "'input' must be a string or a list of strings.", "invalid_request")
        assert isinstance(body, dict)
        dim = body.get("dimensions", self.embedding_dim)
        if not isinstance(dim, int) or dim < 1:
            return _error(400, "'dimensions' must be a positive integer.", "invalid_request")
        tokens = sum(len(text.split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": fake_embedding(text, dim)}
                    for i, text in enumerate(inputs)
                ],
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _audio_fault(self, endpoint: str, model: str) -> web.Response | None:
        if self.audio_delay > 0:
            await asyncio.sleep(self.audio_delay)
        status = None
        with self._lock:
            for fault in self._audio_faults:
                if fault[1] in (None, endpoint) and fault[2] in (None, model):
                    self._audio_faults.remove(fault)
                    status = fault[0]
                    break
        if status is not None:
            return _error(status, f"Injected failure {status}.", "injected")
        return None

    async def _transcriptions(self, request: web.Request) -> web.Response:
        fields: dict[str, str] = {}
        files: dict[str, tuple[str | None, str | None, bytes]] = {}
        if request.content_type == "application/json":
            return await self._json_transcription(request)
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp_BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content_type = part.headers.get("Content-Type")
                    files[part.name] = (part.filename, content_type, bytes(await part.read()))
                else:
                    fields[part.name] = await part.text()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=None,
            at=time.monotonic(),
            multipart={"fields": fields, "files": files},
        )
        with self._lock:
            self.requests.append(record)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        if "file" not in files or not fields.get("model"):
            return _error(400, "'file' and 'model' are required (multipart/form-data).", "invalid")
        return await self._transcript(fields["model"], files["file"][2])

    async def _json_transcription(self, request: web.Request) -> web.Response:
        """OpenRouter's shape: ``{"model", "input_audio": {"data": <base64>, "format"}}``."""
        record = await self._record(request)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        body = record.json if isinstance(record.json, dict) else {}
        audio = body.get("input_audio")
        if (
            not body.get("model")
            or not isinstance(audio, dict)
            or not isinstance(audio.get("format"), str)
            or not isinstance(audio.get("data"), str)
        ):
            return _error(400, "'model' and 'input_audio' {data, format} are required.", "invalid")
        try:
            data = base64.b64decode(audio["data"], validate=True)
        except ValueError:
            return _error(400, "'input_audio.data' is not base64.", "invalid")
        return await self._transcript(str(body["model"]), data)

    async def _transcript(self, model: str, data: bytes) -> web.Response:
        if (fault := await self._audio_fault("transcriptions", model)) is not None:
            return fault
        with self._lock:
            scripted = self._transcripts.popleft() if self._transcripts else None
        text = scripted if scripted is not None else sample_label(data) or ""
        return web.json_response({"text": text})

    async def _speech(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        body = record.json
        if not isinstance(body, dict) or not body.get("input") or not body.get("model"):
            return _error(400, "'model' and 'input' are required.", "invalid_request")
        if (fault := await self._audio_fault("speech", str(body["model"]))) is not None:
            return fault
        audio_format = str(body.get("response_format") or "mp3")
        starts = {"opus": b"OggS\x00\x02", "mp3": b"ID3\x04\x00", "wav": b"RIFF"}
        data = self.speech_audio or starts.get(audio_format, b"") + body["input"].encode()[:64]
        return web.Response(body=data, content_type="application/octet-stream")

    async def _models(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if (denied := self._unauthorized(record)) is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "honeychat-fake"}
                    for name in self.models
                ],
            }
        )


def fake_embedding(text: str, dim: int = 384) -> list[float]:
    """A deterministic unit vector for ``text``: the normalized sum of one random vector per word.

    Texts that share words get a higher cosine similarity, which is enough for
    retrieval tests; the same text always gives the same vector, in any process.
    """
    words = [w.lower() for w in _WORD.findall(text)] or [""]
    total = [0.0] * dim
    for word in words:
        for i, value in enumerate(_word_vector(word, dim)):
            total[i] += value
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]


@lru_cache(maxsize=4096)
def _word_vector(word: str, dim: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    return tuple(rng.gauss(0.0, 1.0) for _ in range(dim))


def _content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or OpenAI's list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _image_labels(content: Any) -> list[str]:
    """Labels of the ``image_url`` parts of a message (``?`` for an image without one)."""
    labels = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict) or part.get("type") != "image_url":
            continue
        url = str((part.get("image_url") or {}).get("url", ""))
        data = b""
        if url.startswith("data:") and "," in url:
            with contextlib.suppress(ValueError):
                data = base64.b64decode(url.split(",", 1)[1])
        labels.append(sample_label(data) or "?")
    return labels


def _chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None
) -> bytes:
    """One SSE event of a streamed completion (``chat.completion.chunk``)."""
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


async def _end_stream(
    response: web.StreamResponse,
    completion_id: str,
    created: int,
    model: str,
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    """Send the usage chunk (when asked for) and ``[DONE]``, and end the body."""
    if usage is not None:
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        await response.write(f"data: {json.dumps(final)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _tool_message_problem(messages: list[Any]) -> str | None:
    """Why a conversation breaks OpenAI's tool-message rules (``None``: it does not).

    Each assistant message with ``tool_calls`` must be followed by one
    ``role: tool`` message per call id, and a tool message must answer such a call.
    """
    pending: set[str] = set()
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return f"a tool message answers no preceding tool call ({call_id!r})."
            pending.discard(call_id)
            continue
        if pending:
            return f"tool calls without results: {', '.join(sorted(pending))}."
        if message.get("role") == "assistant" and message.get("tool_calls"):
            pending = {str(c.get("id")) for c in message["tool_calls"] if isinstance(c, dict)}
    return None


def _error(
    status: int, message: str, code: str, *, retry_after: float | str | None = None
) -> web.Response:
    """An error in OpenAI's format: ``{"error": {"message", "type", "code"}}``."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
    return web.json_response(
        {"error": {"message": message, "type": "fake_llm_error", "code": code}},
        status=status,
        headers=headers,
    )
