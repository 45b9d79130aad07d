"""Speech to text and text to speech over the OpenAI-compatible audio endpoints.

* ``POST {STT_BASE_URL}/audio/transcriptions``: ``multipart/form-data`` with
  ``file``, ``model`` (``STT_MODEL``), ``response_format=json`` and an optional
  ``language``; the answer is ``{"text": ...}``. OpenAI, Groq, vLLM and local
  Whisper servers speak it.
* ``POST {TTS_BASE_URL}/audio/speech``: JSON ``model``, ``input``, ``voice``,
  ``response_format`` (``opus`` for Telegram voice notes, ``mp3`` elsewhere);
  the answer is the audio bytes.

Both endpoints and keys default to the LLM's (``LLM_BASE_URL``/OpenRouter).
Timeouts follow the LLM client's connect and pool settings; reading is
bounded by ``STT_TIMEOUT``/``TTS_TIMEOUT``. Image description goes through
:meth:`honeychat.core.llm.LLMClient.complete` (it is a chat completion).
Every failure is a :class:`~honeychat.core.media.errors.MediaServiceError`
whose message never holds a key.
"""

from __future__ import annotations

from typing import Any

import httpx

from honeychat.core.llm import _error_detail as error_detail
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

    async def transcribe(self, data: bytes, *, filename: str, mime_type: str) -> str:
        """The text spoken in ``data`` (may be empty when nothing was said)."""
        s = self.settings
        endpoint = s.stt_endpoint
        if not endpoint:
            raise MediaServiceError("no transcription endpoint: set STT_BASE_URL or an LLM")
        form: dict[str, Any] = {"model": s.stt_model, "response_format": "json"}
        if s.stt_language:
            form["language"] = s.stt_language
        response = await self._post(
            f"{endpoint}/audio/transcriptions",
            "transcription",
            s.stt_timeout,
            headers=_headers(s, endpoint, s.stt_key),
            data=form,
            files={"file": (filename, data, mime_type)},
        )
        try:
            body = response.json()
        except ValueError:
            raise MediaServiceError("transcription answered a body that is not JSON") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise MediaServiceError("transcription answered without a 'text' field")
        return text.strip()

    async def synthesize(self, text: str, *, voice: str, audio_format: str) -> bytes:
        """``text`` spoken by ``voice`` (``TTS_MODEL``), in ``audio_format``."""
        s = self.settings
        endpoint = s.tts_endpoint
        if not endpoint or not s.tts_model:
            raise MediaServiceError("speech is not configured: set TTS_MODEL")
        response = await self._post(
            f"{endpoint}/audio/speech",
            "speech",
            s.tts_timeout,
            headers=_headers(s, endpoint, s.tts_key),
            json={
                "model": s.tts_model,
                "input": text,
                "voice": voice,
                "response_format": audio_format,
            },
        )
        if not response.content:
            raise MediaServiceError("speech answered an empty body")
        return response.content

    async def _post(self, url: str, what: str, timeout: float, **kwargs: Any) -> httpx.Response:
        s = self.settings
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
        except httpx.TimeoutException as exc:
            raise MediaServiceError(f"{what} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise MediaServiceError(f"{what} could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            detail = error_detail(response)
            raise MediaServiceError(
                f"{what} answered HTTP {response.status_code}" + (f": {detail}" if detail else "")
            )
        return response
