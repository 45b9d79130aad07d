"""Each reply's provenance trail: recorded after the turn, served by the inspector, forgotten.

Real pipeline, embedded stores, the fake LLM; the inspector on a loopback port.
"""

from __future__ import annotations

from typing import Any

from inspector_helpers import TOKEN, client, path, running_inspector, seed, summarizing_responder

from honeychat import hookimpl
from honeychat.core.turn import Turn
from honeychat.testing.pytest_plugin import BotFactory, send

FIRED = [{"id": "e1", "name": "Lisbon", "keys": ["lisbon"], "tokens": 7}]


class FakeLorebook:
    """Stands in for #19's lorebook: reports an entry that fired, as the convention says."""

    @hookimpl
    def honeychat_prompt_sections(self, turn: Turn) -> list[str]:
        turn.extras["lorebook_fired"] = FIRED
        return []


async def test_a_reply_trail_names_its_memory_lines_recent_messages_and_lorebook(
    bot_factory: BotFactory,
) -> None:
    bot_factory.llm.responder = summarizing_responder
    bot = await bot_factory(
        plugins=[("fake-lorebook", FakeLorebook())],
        summary_window=2,
        hot_buffer_size=4,
        inspector_token=TOKEN,
        provenance_ttl_hours=1,
    )
    key = await seed(bot, turns=5)  # windows 1-4 and 5-8 summarized, 10 messages
    await send(bot, "Which city does my sister Priya live in?")  # user 11, reply 12

    assert bot.redis is not None and bot.trails is not None
    ttl = await bot.redis.pttl(bot.trails.key(key))
    assert 0 < ttl <= 3600 * 1000

    async with running_inspector(bot) as url, client(url) as http:
        response = await http.get(path(key) + "/trail", params={"reply": 12})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["ttl_hours"] == 1
        (trail,) = body["trails"]
        assert trail["reply_seq"] == 12 and trail["user_seq"] == 11
        lines = [(m["window"], line) for m in trail["memory"] for line in m["lines"]]
        lisbon = [(w, line) for w, line in lines if "Lisbon" in line["text"]]
        assert lisbon, trail["memory"]
        window, line = lisbon[0]
        assert window == [1, 4] and line["sources"] == [1]
        assert line["tokens"] > 0 and line["score"] is not None
        # The recent buffer (4 messages) without the user's own message.
        assert [m["seq"] for m in trail["recent"]] == [8, 9, 10]
        assert trail["lorebook"] == FIRED
        assert trail["tokens"]["memory"] == sum(x["tokens"] for _, x in lines)
        assert trail["tokens"]["lorebook"] == 7

        everything = (await http.get(path(key) + "/trail")).json()["trails"]
        assert [t["reply_seq"] for t in everything] == [2, 4, 6, 8, 10, 12]

        assert (await http.delete(path(key))).status_code == 200
    assert await bot.redis.exists(bot.trails.key(key)) == 0  # /forget forgets the trail too
