"""Hooks are called through pluggy's own hook callers, with honeychat awaiting each result.

Sync and async implementations run one at a time in pluggy's order; a
firstresult hook stops at the first non-None *awaited* result; hook wrappers
are refused at registration; pluggy's tracing and call monitoring see the
turn's hooks.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from honeychat import hookimpl
from honeychat.core.plugins import PluginHost
from honeychat.core.types import MemoryContext, Role, StoredMessage
from honeychat.testing import BotFactory, send


class Order:
    """Three prompt_sections implementations, mixed sync/async, recording when each runs."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    @hookimpl(tryfirst=True)
    async def honeychat_prompt_sections(self, turn: Any) -> str:
        await asyncio.sleep(0)
        self.ran.append("async-first")
        return "section from the async tryfirst implementation"


class Middle:
    def __init__(self, order: Order) -> None:
        self.order = order

    @hookimpl
    def honeychat_prompt_sections(self, turn: Any) -> None:
        self.order.ran.append("sync-middle")


class Last:
    def __init__(self, order: Order) -> None:
        self.order = order

    @hookimpl(trylast=True)
    async def honeychat_prompt_sections(self, turn: Any) -> list[str]:
        self.order.ran.append("async-last")
        return ["section from the async trylast implementation"]


async def test_sync_and_async_implementations_run_in_pluggys_order(
    bot_factory: BotFactory,
) -> None:
    order = Order()
    bot = await bot_factory(
        plugins=[("order", order), ("middle", Middle(order)), ("last", Last(order))]
    )
    bot_factory.llm.script(["Hello."])
    channel = await send(bot, "hi")
    assert channel.last_text == "Hello."
    assert order.ran == ["async-first", "sync-middle", "async-last"]
    prompt = bot_factory.last_system_prompt()
    assert prompt.index("async tryfirst") < prompt.index("async trylast")


class NoOpinion:
    """An async firstresult implementation that answers None: the next one must be asked."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl(tryfirst=True)
    async def honeychat_memory_context(self, turn: Any) -> None:
        self.asked += 1
        await asyncio.sleep(0)


class FixedContext:
    """A firstresult implementation that answers: nothing after it may run."""

    @hookimpl(tryfirst=True)
    async def honeychat_memory_context(self, turn: Any) -> MemoryContext:
        pinned = StoredMessage(1000, Role.USER, "PINNED-CONTEXT-7781", datetime.now(UTC))
        return MemoryContext(recent=(pinned,))


async def test_firstresult_skips_an_awaited_none_and_stops_at_an_awaited_answer(
    bot_factory: BotFactory,
) -> None:
    silent = NoOpinion()
    bot = await bot_factory(plugins=[("silent", silent)])
    bot_factory.llm.script(["One.", "Two."])
    await send(bot, "my cat is called Miso")
    channel = await send(bot, "what is my cat called?")
    assert channel.last_text == "Two."
    assert silent.asked == 2
    # The built-in memory plugin answered after the async None: the history is in the prompt.
    assert any("Miso" in str(m["content"]) for m in bot_factory.last_prompt()[:-1])

    bot2 = await bot_factory(plugins=[("fixed", FixedContext()), ("silent2", NoOpinion())])
    bot_factory.llm.script(["Three."])
    await send(bot2, "hello", user="bob")
    history = [str(m["content"]) for m in bot_factory.last_prompt()[1:-1]]
    assert history == ["PINNED-CONTEXT-7781"], "only the first answer was used"


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def honeychat_memory_context(self, turn: Any) -> Any:
        return (yield)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def honeychat_prompt_sections(self, turn: Any) -> Any:
        yield


def test_hook_wrappers_are_refused_with_a_clear_message() -> None:
    host = PluginHost()
    assert not host.register(NewStyleWrapper(), "new-wrapper")
    assert not host.register(OldStyleWrapper(), "old-wrapper")
    messages = [str(p) for p in host.problems]
    assert len(messages) == 2
    assert messages[0].startswith(
        "plugin 'new-wrapper': honeychat_memory_context is a hook wrapper"
    )
    assert messages[1].startswith(
        "plugin 'old-wrapper': honeychat_prompt_sections is a hook wrapper"
    )
    assert all("tryfirst=True" in m for m in messages)
    assert not host.pm.has_plugin("new-wrapper") and not host.pm.has_plugin("old-wrapper")


async def test_pluggy_tracing_and_monitoring_see_every_stage_of_a_turn(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory()
    traced: list[str] = []
    bot.plugins.pm.trace.root.setwriter(traced.append)
    undo_tracing = bot.plugins.pm.enable_tracing()
    monitored: list[tuple[str, list[str]]] = []
    outcomes: list[Any] = []

    def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        monitored.append((hook_name, [i.plugin_name for i in impls]))

    def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        outcomes.append((hook_name, outcome.get_result()))

    undo_monitoring = bot.plugins.pm.add_hookcall_monitoring(before, after)
    try:
        bot_factory.llm.script(["Traced."])
        channel = await send(bot, "trace me")
    finally:
        undo_monitoring()
        undo_tracing()
    assert channel.last_text == "Traced."
    hooks = [name for name, _ in monitored]
    for stage in (
        "honeychat_ingest",
        "honeychat_persist",
        "honeychat_memory_context",
        "honeychat_prompt_sections",
        "honeychat_transform_reply",
        "honeychat_schedule_summary",
        "honeychat_turn_complete",
    ):
        assert stage in hooks
        assert any(stage in line for line in traced), f"{stage} missing from pluggy's trace"
    assert ("honeychat_memory_context", ["memory"]) in monitored
    # After the turn, the pending call pluggy handed over holds the awaited result.
    context_call = next(result for name, result in outcomes if name == "honeychat_memory_context")
    assert isinstance(context_call.result, MemoryContext)
