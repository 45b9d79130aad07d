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


async def run_doctor(settings: Settings) -> int:
    """Print every check; exit code 1 if any failed."""
    checks = [
        await check_characters(settings),
        await check_redis(settings),
        await check_embeddings(settings),
        await check_summaries(settings),
        await check_chroma(settings),
        await check_llm(settings),
    ]
    for check in checks:
        print(check)
    return 0 if all(c.ok for c in checks) else 1
