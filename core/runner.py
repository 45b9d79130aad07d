"""``honeychat run``: start the bot and every configured platform adapter;
``honeychat worker``: run background jobs only."""

from __future__ import annotations

import asyncio
import logging

from honeychat.core.adapter import Adapter
from honeychat.core.bot import Bot
from honeychat.core.settings import Settings
from honeychat.core.shutdown import stop_on_signals, within

log = logging.getLogger(__name__)

NO_ADAPTER = (
    "No platform is configured: set TELEGRAM_BOT_TOKEN, DISCORD_BOT_TOKEN, or SLACK_BOT_TOKEN "
    "(with SLACK_SIGNING_SECRET or SLACK_APP_TOKEN). To chat locally, use `honeychat chat`."
)


async def collect_adapters(bot: Bot) -> list[Adapter]:
    """The adapters plugins registered, restricted to ``ADAPTERS`` when it is set."""
    adapters: list[Adapter] = []
    for result in await bot.plugins.call("honeychat_register_adapters", bot=bot):
        adapters.extend(result if isinstance(result, list | tuple) else [result])
    wanted = set(bot.settings.adapters)
    if wanted:
        unknown = wanted - {a.name for a in adapters}
        for name in sorted(unknown):
            log.error(
                "adapter '%s' is listed in ADAPTERS but not configured or not installed", name
            )
        adapters = [a for a in adapters if a.name in wanted]
    return adapters


async def run_adapters(settings: Settings, *, stop_event: asyncio.Event | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop_event``); returns an exit code."""
    with stop_on_signals(stop_event or asyncio.Event()) as stop:
        return await _serve_adapters(settings, stop)


async def _serve_adapters(settings: Settings, stop: asyncio.Event) -> int:
    async with Bot(settings) as bot:
        adapters = await collect_adapters(bot)
        if not adapters:
            # An adapter plugin kept out by its config (TELEGRAM_WEBHOOK_PORT=abc) says so.
            problems = "; ".join(str(p) for p in bot.plugins.problems)
            log.error("%s", f"No platform is running: {problems}" if problems else NO_ADAPTER)
            return 2
        started: list[Adapter] = []
        for adapter in adapters:
            try:
                await adapter.start()
            except Exception as exc:
                log.error("adapter '%s' could not start: %s", adapter.name, exc)
                continue
            log.info("adapter '%s' running", adapter.name)
            started.append(adapter)
        if not started:
            return 1
        await stop.wait()
        log.info("stopping: finishing in-flight replies")
        for adapter in reversed(started):
            try:
                await within(adapter.stop(), settings.shutdown_timeout, f"adapter '{adapter.name}'")
            except Exception:
                log.exception("adapter '%s' did not stop cleanly", adapter.name)
    return 0


NO_QUEUE = "The worker needs Redis (REDIS_URL, or the embedded server) for its job queue."


async def run_worker(
    settings: Settings,
    *,
    ops: tuple[str, int] | None = None,
    stop_event: asyncio.Event | None = None,
) -> int:
    """Run jobs (summaries) until SIGINT/SIGTERM (or ``stop_event``); returns an exit code.

    With ``ops`` (host, port), ``/healthz``, ``/readyz`` and ``/metrics`` are served there. A job
    running when the signal comes gets ``SHUTDOWN_TIMEOUT`` to finish; then it goes back to the
    queue for another worker.
    """
    settings = settings.model_copy(update={"jobs_worker": True})
    with stop_on_signals(stop_event or asyncio.Event()) as stop:
        async with Bot(settings) as bot:
            if bot.jobs is None or not bot.jobs.worker_running:
                log.error(NO_QUEUE)
                return 1
            if bot.memory is None or bot.memory.summarizer is None:
                log.warning("summaries are off (no LLM, Redis or Chroma): no job to run yet")
            log.info("worker running (concurrency %d)", settings.jobs_concurrency)
            server = None
            if ops is not None:
                from honeychat.core.inspector.app import create_app
                from honeychat.core.inspector.server import make_server

                server = make_server(create_app(bot, inspector=False), *ops, own_signals=False)
                serving = asyncio.create_task(server.serve())
            await stop.wait()
            log.info("stopping: finishing running jobs")
            if server is not None:
                server.should_exit = True
                await within(serving, settings.shutdown_timeout, "the ops endpoints")
    return 0
