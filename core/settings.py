"""One settings model, read from the environment and an optional YAML file.

Precedence, highest first: keyword arguments, environment variables (and a
``.env`` file in the working directory), the YAML file named by
``HONEYCHAT_CONFIG`` (keys are the lower-case field names), then the defaults
below. Every variable is listed in ``.env.example``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


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


def _default_tiers() -> dict[str, Tier]:
    return {
        "free": Tier(daily_message_limit=20, recent_messages=12, max_output_tokens=400),
        "premium": Tier(recent_messages=20, max_output_tokens=1000),
    }


class Settings(BaseSettings):
    """Every setting honeychat reads. Field names are the variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

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
    provenance_ttl_hours: float = Field(default=72, ge=0)
    """How long each reply's provenance trail (what went into its prompt) is kept; 0: none."""
    summary_max_attempts: int = Field(default=3, ge=1)
    """Attempts at summarizing one window; after that its messages are kept verbatim."""
    summary_retry_seconds: float = Field(default=30.0, gt=0)
    """Wait before retrying a failed summary; doubles with each failure (at most 15 minutes)."""
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
    telegram_bot_token: str | None = None
    telegram_api_base: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_host: str = "0.0.0.0"
    telegram_webhook_port: int = 8080
    discord_bot_token: str | None = None
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    discord_allowed_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    slack_port: int = 3000
    slack_host: str = "0.0.0.0"
    """Interface the Slack Events API endpoint (``/slack/events``) listens on in HTTP mode."""

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
    stt_enabled: bool = True
    """Transcribe voice notes and audio files (through ``/audio/transcriptions``)."""
    stt_model: str = "whisper-1"
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
        "discord_allowed_channels",
        "inspector_cors_origins",
        "inspector_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("HONEYCHAT_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

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
