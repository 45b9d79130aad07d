"""One settings model, read from the environment and an optional YAML file.

Precedence, highest first: keyword arguments, environment variables (and a
``.env`` file in the working directory), the YAML file named by
``HONEYCHAT_CONFIG`` (keys are the lower-case field names), then the defaults
below (see :mod:`honeychat.core.env_settings`). Every variable is listed in
``.env.example``; adapters' variables are read by their own models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from honeychat.core.env_settings import EnvironmentSettings, split_commas

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
OPENROUTER_STT_MODEL = "openai/whisper-1"
"""Whisper's name on OpenRouter's ``/audio/transcriptions``: the ``STT_MODEL`` default there."""
OPENAI_STT_MODEL = "whisper-1"
"""Whisper's name on OpenAI's API (and many compatible servers): the default elsewhere."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/honeychat``, else ``~/.local/share/honeychat``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "honeychat"


ImageMode = Literal["inline", "describe", "off"]
"""How images reach the chat model: as image parts (``inline``), as a description
written by ``VISION_MODEL`` (``describe``, for text-only chat models), or not at all."""


class Tier(BaseModel):
    """What one class of users gets: model, output size, history window and quota."""

    model: str = "openai/gpt-4o-mini"
    fallback_models: list[str] = Field(default_factory=list)
    max_output_tokens: int = Field(default=600, ge=1)
    recent_messages: int = Field(default=20, ge=0)
    """How many of the hot buffer's newest messages go into the prompt."""
    daily_message_limit: int | None = Field(default=None, ge=0)
    """Messages a user may send per day (``None``: unlimited)."""
    image_mode: ImageMode | None = None
    """Overrides ``IMAGE_MODE`` for this tier (``None``: the global setting)."""
    vision_model: str | None = None
    """Overrides ``VISION_MODEL`` for this tier."""
    stt_model: str | None = None
    """Overrides ``STT_MODEL`` for this tier."""
    stt_fallback_models: list[str] | None = None
    """Overrides ``STT_FALLBACK_MODELS`` for this tier."""
    tts_model: str | None = None
    """Overrides ``TTS_MODEL`` for this tier (so one tier may answer by voice and another not)."""
    tts_fallback_models: list[str] | None = None
    """Overrides ``TTS_FALLBACK_MODELS`` for this tier."""
    tools: list[str] = Field(default_factory=lambda: ["*"])
    """Tools this tier may use, as name patterns (``mcp__weather__*``); ``[]``: no tools."""
    tool_max_steps: int | None = Field(default=None, ge=0)
    """Overrides ``TOOL_MAX_STEPS`` for this tier."""


def _default_tiers() -> dict[str, Tier]:
    return {
        "free": Tier(daily_message_limit=20, recent_messages=12, max_output_tokens=400),
        "premium": Tier(recent_messages=20, max_output_tokens=1000),
    }


class Settings(EnvironmentSettings):
    """Every setting of the core. Field names are the variables, upper-cased.

    Each adapter's settings (``TELEGRAM_*``, ``DISCORD_*``, ``SLACK_*``) live next to
    the adapter, in its plugin's ``config_model``.
    """

    # Where things live
    data_dir: Path = Field(default_factory=default_data_dir)
    characters_dir: Path | None = None
    """Extra directory of character YAML files, loaded after the built-in ones."""
    default_character: str = "luna"
    max_persona_chars: int = Field(default=32_000, ge=1)
    """The largest a character's prompt field (persona, scenario, examples...) may be, in characters."""

    # Stores
    redis_url: str | None = None
    """A real Redis/Valkey server; unset means an embedded server under ``data_dir``."""
    chroma_url: str | None = None
    """A Chroma server (``http://host:port``); unset means an embedded Chroma under ``data_dir``."""
    key_prefix: str = "hc"
    """Prefix of every Redis key, so several deployments can share one server."""

    # Memory
    hot_buffer_size: int = Field(default=20, ge=2)
    hot_buffer_ttl_days: float = Field(default=7, gt=0)
    summary_window: int = Field(default=10, ge=1)
    """Turns (a user message and its reply) summarized into one cold document."""
    retrieval_k: int = Field(default=32, ge=0)
    """At most this many older summaries contribute lines to a turn's prompt (0: none)."""
    memory_budget_tokens: int = Field(default=512, ge=0)
    """Tokens that summaries (the latest and the relevant lines) may add to a turn's prompt."""
    retrieval_candidates: int = Field(default=32, ge=1)
    """Summaries fetched by vector similarity before hybrid ranking fills the budget."""
    memory_keep_messages: bool = True
    """Keep each window's messages verbatim in its cold document beside the summary, each
    line searchable (better recall; about 3x the stored vectors of summaries alone)."""
    provenance_ttl_hours: float = Field(default=72, ge=0)
    """How long each reply's provenance trail (what went into its prompt) is kept; 0: none."""
    summary_max_attempts: int = Field(default=3, ge=1)
    """Attempts at summarizing one window; after that its messages are kept verbatim."""
    summary_retry_seconds: float = Field(default=30.0, gt=0)
    """Wait before retrying a failed summary; doubles with each failure (at most 15 minutes)."""
    memory_idle_summary_minutes: float = Field(default=60, ge=0)
    """After this long without a turn, a conversation's unsummarized tail is summarized (0: never)."""
    jobs_worker: bool = True
    """Run a job worker (summaries) inside ``run``, ``chat`` and ``serve``; ``worker`` always does."""
    jobs_concurrency: int = Field(default=4, ge=1)
    """Jobs one worker runs at once."""
    jobs_heartbeat_seconds: float = Field(default=10.0, gt=0)
    """A running job renews its claim every third of this; a job silent this long is stuck."""
    jobs_sweep_seconds: int = Field(default=5, ge=1)
    """How often some worker looks for stuck jobs (of a worker that died) to hand them on."""
    jobs_poll_seconds: float = Field(default=1.0, gt=0)
    """Longest blocking wait for a job (kept below ``REDIS_TIMEOUT``); delayed jobs are due
    within about this much."""
    memory_spool_size: int = Field(default=10_000, ge=0)
    """Messages kept in process memory while Redis is unreachable (oldest dropped beyond it)."""
    memory_retention_days: float | None = Field(default=None, gt=0)
    """Erase conversations idle for this many days from both layers (unset: keep for ever)."""
    retention_sweep_minutes: float = Field(default=60.0, gt=0)
    """How often each process looks for conversations past ``memory_retention_days``."""
    embedding_backend: str = "minilm"
    """``minilm`` (bundled all-MiniLM-L6-v2), ``chroma-default`` (Chroma's ONNX model) or ``openai``."""
    embedding_threads: int = Field(default=1, ge=0)
    """CPU threads for the bundled model (0: PyTorch's default, one per core)."""
    embedding_model: str = "text-embedding-3-small"
    """Model name for the ``openai`` embedding backend."""
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None

    # LLM
    openrouter_api_key: str | None = None
    llm_base_url: str | None = None
    """Any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp); default OpenRouter."""
    llm_api_key: str | None = None
    summarizer_model: str = "openai/gpt-4o-mini"
    llm_connect_timeout: float = Field(default=5.0, gt=0)
    llm_read_timeout: float = Field(default=60.0, gt=0)
    """Idle timeout: seconds without a byte from the LLM (keep-alive comments count)."""
    llm_pool_timeout: float = Field(default=5.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_backoff_base: float = Field(default=0.5, ge=0)
    llm_backoff_max: float = Field(default=20.0, ge=0)
    llm_temperature: float = Field(default=0.8, ge=0, le=2)
    llm_streaming: bool = True
    app_url: str = "https://github.com/honeychat/honeychat"
    app_title: str = "honeychat"

    # Users
    tiers: dict[str, Tier] = Field(default_factory=_default_tiers)
    default_tier: str = "free"
    user_tiers: dict[str, str] = Field(default_factory=dict)
    """Tier per user, keyed ``platform:user_id``."""
    max_message_chars: int = Field(default=8000, ge=1)
    """Longer messages are cut to this length, with a note to the user."""

    # Plugins
    disabled_plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    plugins_dir: Path | None = None
    plugin_config: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Adapters
    adapters: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Adapters ``honeychat run`` starts; empty means every adapter whose credentials are set."""

    # Shared spaces (groups, server channels, Slack channels): see docs/spaces.md
    space_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """``platform:user_id`` entries allowed to run admin commands in every space, besides
    the platform's own admins."""
    space_replies_per_minute: int = Field(default=20, ge=0)
    """Default cap on the replies the bot posts in one space per minute (0: no replies)."""
    space_record_unaddressed: bool = True
    """Keep messages not addressed to the bot (when the platform delivers them) in the
    space's memory, without replying."""

    # Scaling out
    conversation_lease_seconds: float = Field(default=150.0, gt=0)
    """How long one process holds a conversation's lease (extended while its turn runs); must
    exceed the longest a turn may take. Another process waits at most this long after a crash."""

    # Inspector (`honeychat serve`)
    inspector_token: SecretStr | None = None
    """Bearer token the inspector API requires; without it the inspector binds to loopback only."""
    inspector_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the inspector API from a browser; empty means CORS is off."""

    inspector_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names the token-less inspector answers besides loopback ones (behind a proxy)."""
    inspector_auth_failures: int = Field(default=10, ge=1)
    """Wrong tokens one address may send per minute; then it gets 429 until the minute is over."""

    # Deadlines and shutdown
    memory_read_timeout: float = Field(default=2.0, gt=0)
    """Seconds a turn's memory reads may take together; a slower layer is skipped like a down one."""
    redis_timeout: float = Field(default=2.0, gt=0)
    """Seconds to connect to Redis and for each command to answer."""
    chroma_timeout: float = Field(default=10.0, gt=0)
    """Seconds each Chroma call may take (turns wait at most ``memory_read_timeout``)."""
    store_max_threads: int = Field(default=4, ge=1)
    """Threads that may wait on Chroma at once; more calls fail at once while all are busy."""
    llm_total_timeout: float = Field(default=120.0, gt=0)
    """Seconds a reply may take in all (retries and fallbacks included) before it is cut off."""
    shutdown_timeout: float = Field(default=5.0, gt=0)
    """Seconds SIGTERM waits for in-flight turns, then again for pending work, before stopping."""

    # Logging
    log_level: str = "INFO"

    # Tools and MCP servers (see docs/tools.md)
    tools_enabled: bool = True
    """Offer tools to models (``False``: no request carries ``tools``)."""
    tool_max_steps: int = Field(default=4, ge=0)
    """Rounds of tool calls one reply may take; the last round must answer in words."""
    tool_timeout: float = Field(default=10.0, gt=0)
    """Seconds each tool call may take (MCP calls included); a slower one answers with an error."""
    tool_result_max_chars: int = Field(default=4000, ge=100)
    """Longer tool outputs are cut to this before the model reads them."""
    tool_history_max_chars: int = Field(default=1000, ge=0)
    """Tool outputs kept with a reply for later turns' prompts are cut to this."""
    mcp_servers: Annotated[str | dict[str, Any] | None, NoDecode] = None
    """MCP servers whose tools characters may allow: JSON or YAML text, or a file path."""
    mcp_start_timeout: float = Field(default=15.0, gt=0)
    """Seconds an MCP server may take to start and list its tools; then it is skipped."""

    # Media: images, voice notes and spoken replies (see honeychat.core.media)
    image_mode: ImageMode = "inline"
    vision_model: str = "openai/gpt-4o-mini"
    """The model that describes images when ``IMAGE_MODE=describe``."""
    media_max_image_bytes: int = Field(default=10_000_000, ge=1)
    media_max_audio_bytes: int = Field(default=20_000_000, ge=1)
    media_max_audio_seconds: float = Field(default=600, gt=0)
    """Longer voice notes are refused (when the platform reports a duration)."""
    media_max_items: int = Field(default=4, ge=1)
    """Images and audio files handled per message; more are refused."""
    media_download_timeout: float = Field(default=30.0, gt=0)
    media_keep_images: bool = False
    """Keep the images users send, under ``DATA_DIR/media/`` (deleted with the conversation by
    ``/forget`` and ``honeychat memory clear``); off: images are used for the turn and dropped."""
    stt_enabled: bool = True
    """Transcribe voice notes and audio files (through ``/audio/transcriptions``)."""
    stt_model: str | None = None
    """The transcription model; default ``openai/whisper-1`` on OpenRouter, else ``whisper-1``."""
    stt_fallback_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Models tried in turn when ``STT_MODEL`` fails (after its retries)."""
    stt_request_format: Literal["auto", "multipart", "json"] = "auto"
    """How audio is sent to ``/audio/transcriptions``: ``multipart`` (OpenAI's ``file`` upload),
    ``json`` (OpenRouter's base64 ``input_audio``), ``auto``: ``json`` on OpenRouter."""
    stt_base_url: str | None = None
    """An OpenAI-compatible server for transcription; default: the LLM's endpoint."""
    stt_api_key: str | None = None
    """Key for ``STT_BASE_URL``; default: the LLM's key."""
    stt_language: str | None = None
    """ISO-639-1 hint for transcription (``None``: detected by the model)."""
    stt_timeout: float = Field(default=60.0, gt=0)
    stt_echo: bool = True
    """Show the transcript back to the user (a quoted line) before the reply."""
    tts_model: str | None = None
    """Set to answer by voice (through ``/audio/speech``), e.g. ``tts-1``."""
    tts_fallback_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Models tried in turn when ``TTS_MODEL`` fails (after its retries)."""
    tts_base_url: str | None = None
    tts_api_key: str | None = None
    tts_voice: str = "alloy"
    """The default voice; a character's ``media.voice`` wins."""
    tts_timeout: float = Field(default=60.0, gt=0)
    tts_max_chars: int = Field(default=4000, ge=1)
    """Longer replies are sent as text only."""

    @field_validator(
        "disabled_plugins",
        "adapters",
        "space_admins",
        "inspector_cors_origins",
        "inspector_allowed_hosts",
        "stt_fallback_models",
        "tts_fallback_models",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        return split_commas(value)

    # Derived values

    @property
    def llm_endpoint(self) -> str | None:
        """The chat-completions base URL, or ``None`` when no LLM is configured."""
        if self.llm_base_url:
            return self.llm_base_url.rstrip("/")
        if self.openrouter_api_key:
            return OPENROUTER_BASE_URL
        return None

    @property
    def llm_key(self) -> str | None:
        return self.llm_api_key if self.llm_base_url else self.openrouter_api_key

    @property
    def is_openrouter(self) -> bool:
        return self.llm_endpoint == OPENROUTER_BASE_URL or "openrouter.ai" in (
            self.llm_endpoint or ""
        )

    @property
    def summary_window_messages(self) -> int:
        """A window counted in messages: one user message and one reply per turn."""
        return 2 * self.summary_window

    @property
    def stt_endpoint(self) -> str | None:
        """The transcription base URL (``STT_BASE_URL``, else the LLM's)."""
        return (self.stt_base_url or "").rstrip("/") or self.llm_endpoint

    @property
    def stt_key(self) -> str | None:
        return self.stt_api_key if self.stt_base_url else self.llm_key

    @property
    def stt_is_openrouter(self) -> bool:
        """Whether transcription goes to OpenRouter (its model names and its JSON body)."""
        return "openrouter.ai" in (self.stt_endpoint or "")

    @property
    def stt_model_name(self) -> str:
        """``STT_MODEL``, else the name Whisper has at the transcription endpoint."""
        if self.stt_model:
            return self.stt_model
        return OPENROUTER_STT_MODEL if self.stt_is_openrouter else OPENAI_STT_MODEL

    @property
    def stt_json_body(self) -> bool:
        """Whether transcription requests are JSON with base64 audio (else multipart)."""
        if self.stt_request_format == "auto":
            return self.stt_is_openrouter
        return self.stt_request_format == "json"

    @property
    def tts_endpoint(self) -> str | None:
        """The speech base URL (``TTS_BASE_URL``, else the LLM's)."""
        return (self.tts_base_url or "").rstrip("/") or self.llm_endpoint

    @property
    def tts_key(self) -> str | None:
        return self.tts_api_key if self.tts_base_url else self.llm_key

    def tier_for(self, platform: str, user_id: str) -> tuple[str, Tier]:
        """The tier name and limits that apply to a user."""
        name = self.user_tiers.get(f"{platform}:{user_id}", self.default_tier)
        tier = self.tiers.get(name) or self.tiers.get(self.default_tier) or Tier()
        return name, tier
