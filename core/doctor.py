"""``honeychat doctor``: check configuration, each store and the LLM endpoint."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from honeychat.core.redact import redact
from honeychat.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return redact(f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}")


async def check_characters(settings: Settings) -> Check:
    from honeychat.core.characters import CharacterConfigError, CharacterRegistry

    try:
        registry = CharacterRegistry.from_settings(settings)
    except CharacterConfigError as exc:
        return Check("characters", False, str(exc))
    if registry.errors:
        return Check("characters", False, "; ".join(map(str, registry.errors)))
    return Check(
        "characters", True, f"{len(registry)} loaded ({', '.join(c.id for c in registry.all())})"
    )


async def check_redis(settings: Settings) -> Check:
    from honeychat.core.memory.redis_server import connect_redis

    where = settings.redis_url or f"embedded server under {settings.data_dir}"
    try:
        connection = await connect_redis(settings)
        try:
            await asyncio.wait_for(connection.client.ping(), 5)
        finally:
            await connection.close()
    except Exception as exc:
        return Check(
            "redis",
            False,
            f"{where}: {_sentence(exc)} Check REDIS_URL, or unset it to use the embedded server.",
        )
    return Check("redis", True, f"{where} answers")


def _sentence(exc: BaseException) -> str:
    """An error as one sentence ending with exactly one period."""
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."


async def check_embeddings(settings: Settings) -> Check:
    from honeychat.core.memory.embeddings import BACKENDS

    backend = settings.embedding_backend.strip().lower()
    if backend not in BACKENDS:
        return Check(
            "embeddings",
            False,
            f"EMBEDDING_BACKEND={settings.embedding_backend!r} is not one of {', '.join(BACKENDS)}.",
        )
    return Check("embeddings", True, f"{backend} backend")


BACKLOG_STALLED_SECONDS = 3600.0
"""A window waiting longer than this means summaries are not being made."""


async def check_summaries(settings: Settings) -> Check:
    """Summary work waiting in Redis: how many conversations, the oldest wait, and the jobs."""
    import time

    from honeychat.core.jobs import Jobs
    from honeychat.core.memory.hot import RedisHotStore
    from honeychat.core.memory.redis_server import connect_redis

    try:
        connection = await connect_redis(settings)
        jobs = Jobs(connection.client, prefix=settings.key_prefix)
        try:
            store = RedisHotStore(
                connection.client, prefix=settings.key_prefix, buffer_size=2, ttl_seconds=1
            )
            count, oldest = await asyncio.wait_for(store.backlog(), 5)
            queue = await asyncio.wait_for(jobs.counts(), 5)
        finally:
            await jobs.close()
            await connection.close()
    except Exception as exc:
        return Check("summaries", False, f"cannot read the backlog: {exc}")
    in_queue = f"jobs: {queue.queued} queued, {queue.active} running, {queue.scheduled} later"
    if not count or oldest is None:
        return Check("summaries", True, f"no backlog ({in_queue})")
    wait = max(0.0, time.time() - oldest)
    detail = (
        f"backlog: {count} conversation(s) with a window waiting, oldest for {wait:.0f} s"
        f" ({in_queue})"
    )
    if wait > BACKLOG_STALLED_SECONDS:
        return Check(
            "summaries",
            False,
            f"{detail}. Is a worker running, and does the summarizer model answer? "
            "See honeychat_summary_failures_total and the log.",
        )
    return Check("summaries", True, detail)


async def check_chroma(settings: Settings) -> Check:
    from honeychat.core.memory.cold import open_cold_store
    from honeychat.core.memory.embeddings import BACKENDS

    if settings.embedding_backend.strip().lower() not in BACKENDS:
        return Check("chroma", False, "not checked: fix EMBEDDING_BACKEND first (see above).")
    where = settings.chroma_url or f"embedded under {settings.data_dir / 'chroma'}"
    try:
        store = open_cold_store(settings)
        try:
            await store.check()
        finally:
            await store.close()
    except Exception as exc:
        return Check(
            "chroma",
            False,
            f"{where}: {_sentence(exc)} Check CHROMA_URL, or unset it to use embedded Chroma.",
        )
    return Check("chroma", True, f"{where} reachable")


async def check_llm(settings: Settings) -> Check:
    endpoint = settings.llm_endpoint
    if not endpoint:
        return Check("llm", False, "not configured: set OPENROUTER_API_KEY or LLM_BASE_URL")
    headers = {"Authorization": f"Bearer {settings.llm_key}"} if settings.llm_key else {}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{endpoint}/models", headers=headers)
    except httpx.HTTPError as exc:
        return Check("llm", False, f"{endpoint} unreachable: {exc}")
    if response.status_code in (401, 403):
        return Check("llm", False, f"{endpoint} refused the API key (HTTP {response.status_code})")
    if response.status_code >= 400:
        return Check("llm", False, f"{endpoint}/models answered HTTP {response.status_code}")
    return Check("llm", True, f"{endpoint} answers")


def check_voice(settings: Settings) -> Check:
    """Transcription (and speech) settings that cannot work, found before a user sends audio."""
    if not settings.stt_enabled:
        return Check("voice", True, "transcription off (STT_ENABLED=false)")
    endpoint = settings.stt_endpoint
    if not endpoint:
        return Check(
            "voice",
            False,
            "no transcription endpoint: voice notes will be refused; set STT_BASE_URL "
            "(or an LLM), or STT_ENABLED=false",
        )
    named = [
        ("STT_MODEL", settings.stt_model_name, endpoint),
        ("TTS_MODEL", settings.tts_model, settings.tts_endpoint),
    ]
    for tier_name, tier in settings.tiers.items():
        named.append((f"TIERS.{tier_name}.stt_model", tier.stt_model, endpoint))
        named.append((f"TIERS.{tier_name}.tts_model", tier.tts_model, settings.tts_endpoint))
    for variable, model, where in named:
        if model and "/" not in model and "openrouter.ai" in (where or ""):
            return Check(
                "voice",
                False,
                f"{variable}={model} is not an OpenRouter model id (provider/model, e.g. "
                f"openai/{model}): every call to it would fail",
            )
    body = "JSON" if settings.stt_json_body else "multipart"
    speech = f"; speech: {settings.tts_model}" if settings.tts_model else ""
    return Check(
        "voice", True, f"transcription: {settings.stt_model_name} at {endpoint} ({body}){speech}"
    )


async def check_mcp(settings: Settings) -> list[Check]:
    """One line per MCP server: started, with its tools, or why not (none when none is set)."""
    from honeychat.core.mcp_servers import MCPConfigError, MCPServer, parse_servers

    try:
        configs = parse_servers(settings.mcp_servers)
    except MCPConfigError as exc:
        return [Check("mcp", False, str(exc))]
    servers = [
        MCPServer(
            name, config, log_dir=settings.data_dir / "mcp", default_timeout=settings.tool_timeout
        )
        for name, config in configs.items()
    ]
    started = await asyncio.gather(*(s.start(settings.mcp_start_timeout) for s in servers))
    await asyncio.gather(*(s.stop() for s in servers))
    return [
        Check(f"mcp {s.name}", True, f"{len(s.tools)} tools: {', '.join(t.name for t in s.tools)}")
        if ok
        else Check(f"mcp {s.name}", False, f"skipped: {s.error}")
        for s, ok in zip(servers, started, strict=True)
    ]


async def check_plugins(settings: Settings) -> Check:
    """Every plugin loads with a valid config (adapters' ``TELEGRAM_*``... settings included)."""
    from honeychat.core.plugins import PluginHost

    host = PluginHost(settings.plugin_config)
    plugin_log = logging.getLogger("honeychat.core.plugins")
    level = plugin_log.level
    plugin_log.setLevel(logging.CRITICAL)  # the problems are this check's one line
    try:
        host.load(disabled=settings.disabled_plugins, plugins_dir=settings.plugins_dir)
    finally:
        plugin_log.setLevel(level)
    if host.problems:
        return Check("plugins", False, "; ".join(str(p) for p in host.problems))
    return Check("plugins", True, f"{len(host.info)} loaded")


async def run_doctor(settings: Settings) -> int:
    """Print every check; exit code 1 if any failed."""
    checks = [
        await check_characters(settings),
        await check_plugins(settings),
        await check_redis(settings),
        await check_embeddings(settings),
        await check_summaries(settings),
        await check_chroma(settings),
        await check_llm(settings),
        check_voice(settings),
        *await check_mcp(settings),
    ]
    for check in checks:
        print(check)
    return 0 if all(c.ok for c in checks) else 1
