"""Speech to text and text to speech over the OpenAI-compatible audio endpoints.

* ``POST {STT_BASE_URL}/audio/transcriptions``: ``multipart/form-data`` with
  ``file``, ``model`` (``STT_MODEL``), ``response_format=json`` and an optional
  ``language`` (OpenAI, Groq, vLLM and local Whisper servers); or, on
  OpenRouter (``STT_REQUEST_FORMAT``), the JSON body its documentation gives:
  ``model`` and ``input_audio: {data: <base64>, format}``. Either way the
  answer is ``{"text": ...}``.
* ``POST {TTS_BASE_URL}/audio/speech``: JSON ``model``, ``input``, ``voice``,
  ``response_format`` (``opus`` for Telegram voice notes, ``mp3`` elsewhere);
  the answer is the audio bytes.

Both endpoints and keys default to the LLM's (``LLM_BASE_URL``/OpenRouter).
Every call walks a model chain (the tier's or global model, then its
fallbacks) and retries like the chat LLM (:mod:`honeychat.core.llm`): 408,
409, 425, 429, 5xx and transport errors are retried up to ``LLM_MAX_RETRIES``
times per model with the same backoff (or the server's ``Retry-After``); any
other 4xx, or an unusable answer, moves to the next model; 401/403 stop.
Timeouts follow the LLM client's connect and pool settings; reading is
bounded by ``STT_TIMEOUT``/``TTS_TIMEOUT``, which the pipeline also applies to
the whole chain. Image description goes through
:meth:`honeychat.core.llm.LLMClient.complete` (it is a chat completion).
Every failure is a :class:`~honeychat.core.media.errors.MediaServiceError`
whose message never holds a key.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from honeychat.core.llm import _Action as Action
from honeychat.core.llm import _Failure as Failure
from honeychat.core.llm import _status_failure as status_failure
from honeychat.core.llm import backoff_seconds
from honeychat.core.media.errors import MediaServiceError
from honeychat.core.settings import OPENROUTER_BASE_URL, Settings

SPEECH_MIME_TYPES = {
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
}
"""``/audio/speech`` response formats and the MIME type of what they return (opus comes in OGG)."""

T = TypeVar("T")


def _headers(settings: Settings, endpoint: str, key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if endpoint == OPENROUTER_BASE_URL or "openrouter.ai" in endpoint:
        headers["HTTP-Referer"] = settings.app_url
        headers["X-Title"] = settings.app_title
    return headers


class MediaAPI:
    """Transcription and speech for one process (one ``httpx.AsyncClient``).

    ``transport`` is handed to ``httpx.AsyncClient`` (tests).
    """

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.llm_connect_timeout,
                read=settings.llm_read_timeout,
                # Audio uploads are larger than chat bodies: writing gets the read budget.
                write=settings.llm_read_timeout,
                pool=settings.llm_pool_timeout,
            ),
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def transcribe(
        self,
        data: bytes,
        *,
        filename: str,
        mime_type: str,
        models: Sequence[str] = (),
    ) -> str:
        """The text spoken in ``data`` (may be empty when nothing was said).

        ``models``: the chain to try (default ``STT_MODEL`` then ``STT_FALLBACK_MODELS``).
        """
        s = self.settings
        endpoint = s.stt_endpoint
        if not endpoint:
            raise MediaServiceError("no transcription endpoint: set STT_BASE_URL or an LLM")
        headers = _headers(s, endpoint, s.stt_key)
        audio_format = filename.rpartition(".")[2]

        async def attempt(model: str) -> str:
            if s.stt_json_body:
                body: dict[str, Any] = {
                    "model": model,
                    "input_audio": {
                        "data": base64.b64encode(data).decode(),
                        "format": audio_format,
                    },
                }
                if s.stt_language:
                    body["language"] = s.stt_language
                response = await self._post(
                    f"{endpoint}/audio/transcriptions", s.stt_timeout, headers=headers, json=body
                )
            else:
                form: dict[str, Any] = {"model": model, "response_format": "json"}
                if s.stt_language:
                    form["language"] = s.stt_language
                response = await self._post(
                    f"{endpoint}/audio/transcriptions",
                    s.stt_timeout,
                    headers=headers,
                    data=form,
                    files={"file": (filename, data, mime_type)},
                )
            return _transcript(response, model)

        chain = models or (s.stt_model_name, *s.stt_fallback_models)
        return await self._chain("transcription", chain, attempt, key_variable="STT_API_KEY")

    async def synthesize(
        self, text: str, *, voice: str, audio_format: str, models: Sequence[str] = ()
    ) -> bytes:
        """``text`` spoken by ``voice``, in ``audio_format``.

        ``models``: the chain to try (default ``TTS_MODEL`` then ``TTS_FALLBACK_MODELS``).
        """
        s = self.settings
        endpoint = s.tts_endpoint
        chain = [m for m in (models or (s.tts_model or "", *s.tts_fallback_models)) if m]
        if not endpoint or not chain:
            raise MediaServiceError("speech is not configured: set TTS_MODEL")
        headers = _headers(s, endpoint, s.tts_key)

        async def attempt(model: str) -> bytes:
            body = {"model": model, "input": text, "voice": voice, "response_format": audio_format}
            response = await self._post(
                f"{endpoint}/audio/speech", s.tts_timeout, headers=headers, json=body
            )
            if not response.content:
                raise Failure(f"{model} answered an empty body", Action.NEXT_MODEL)
            return response.content

        return await self._chain("speech", chain, attempt, key_variable="TTS_API_KEY")

    async def _chain(
        self,
        what: str,
        models: Sequence[str],
        attempt: Callable[[str], Awaitable[T]],
        *,
        key_variable: str,
    ) -> T:
        """The first answer of ``attempt`` along ``models``, with the chat LLM's retry rules."""
        last: Failure | None = None
        tried: list[str] = []
        for model in dict.fromkeys(models):  # in order, without repeats
            tried.append(model)
            for number in range(self.settings.llm_max_retries + 1):
                try:
                    return await attempt(model)
                except Failure as failure:
                    last = failure
                if last.action is Action.STOP:
                    raise MediaServiceError(
                        f"the {what} endpoint refused the key (HTTP {last.status}): check "
                        f"{key_variable} (or the LLM's key it defaults to)"
                    )
                if last.action is not Action.RETRY or number >= self.settings.llm_max_retries:
                    break
                await asyncio.sleep(backoff_seconds(self.settings, number, last.retry_after))
        raise MediaServiceError(f"{what}: no model answered ({', '.join(tried)}); last: {last}")

    async def _post(self, url: str, timeout: float, **kwargs: Any) -> httpx.Response:
        """One request; a :class:`Failure` saying what the chain should do when it failed."""
        s = self.settings
        model = str((kwargs.get("json") or kwargs.get("data") or {}).get("model", "?"))
        try:
            response = await self._http.post(
                url,
                timeout=httpx.Timeout(
                    connect=s.llm_connect_timeout,
                    read=timeout,
                    write=timeout,
                    pool=s.llm_pool_timeout,
                ),
                **kwargs,
            )
        except httpx.TransportError as exc:
            # Only the type: a transport error's text may carry the URL.
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "was not reached"
            raise Failure(f"{model} {kind} ({type(exc).__name__})", Action.RETRY) from None
        if response.status_code != 200:
            raise status_failure(response, model)
        return response


def _transcript(response: httpx.Response, model: str) -> str:
    try:
        body = response.json()
    except ValueError:
        raise Failure(f"{model} answered a body that is not JSON", Action.NEXT_MODEL) from None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise Failure(f"{model} answered without a 'text' field", Action.NEXT_MODEL)
    return text.strip()
