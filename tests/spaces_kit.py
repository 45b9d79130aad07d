"""The shared-spaces privacy scenario, run against every adapter's end-to-end fake.

Each adapter test provides a :class:`Driver` that speaks its platform's wire
protocol to the fake (a Bot API update, a gateway MESSAGE_CREATE, a signed
Events API request); :func:`run_privacy_matrix` plants a unique token per
user (in their private chat) and per space (said there, not to the bot), and
reads every prompt the fake LLM received.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Protocol

from honeychat.core.bot import Bot
from honeychat.core.types import ConversationKey
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request, transcript

WAIT = 20.0

TOKENS = {
    "A": "tok-ann-private-7391",
    "B": "tok-ben-private-4420",
    "S1": "tok-space-one-1188",
    "S2": "tok-space-two-5064",
}
"""One unique token per user's private chat and per space."""

SPACE_SETTINGS: dict[str, Any] = {"summary_window": 1, "llm_streaming": False}
"""Summary windows of one exchange, so private chats reach long-term memory at once."""


class Driver(Protocol):
    """One platform's way to act as users ``A`` and ``B`` in DMs and spaces ``S1``, ``S2``."""

    bot: Bot
    platform: str

    def space_id(self, space: str) -> str:
        """The core's space id of ``S1``/``S2`` (what the adapter puts in ``space_id``)."""

    async def dm(self, user: str, text: str) -> None:
        """Send ``text`` in the user's private chat and wait for the bot's answer."""

    async def say(self, user: str, space: str, text: str, *, mention: bool) -> None:
        """Post ``text`` in a space; with ``mention``, to the bot, waiting for its answer."""

    async def share(self, user: str) -> None:
        """``/memory share on`` in the user's private chat; wait for the answer."""


def summarize_everyone(request: dict[str, Any]) -> str:
    """The fake LLM: a summary keeps one line per member message (who said what, with its
    source); a chat reply is a fixed word, so no token is echoed into another message."""
    if not is_summary_request(request):
        return "Noted."
    character = str(request["messages"][0]["content"]).split("named ", 1)[1].split(".", 1)[0]
    return "\n".join(
        f"{r['from']} said: {r['text']} [{r['n']}]"
        for r in transcript(request)
        if r["from"] != character
    )


async def idle(bot: Bot) -> None:
    """Wait until every summary scheduled so far is written."""
    assert bot.memory is not None and bot.memory.summarizer is not None
    await bot.memory.summarizer.wait_idle(WAIT)


async def wait_recorded(bot: Bot, conversation: ConversationKey, text: str) -> None:
    """Wait until ``text`` is in the conversation's hot buffer."""
    assert bot.memory is not None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        data = await bot.memory.export(conversation)
        if any(text in m["text"] for m in data["recent"]):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} never reached {conversation.id}")


def tokens_in(messages: Any) -> set[str]:
    text = json.dumps(messages, ensure_ascii=False)
    return {name for name, token in TOKENS.items() if token in text}


async def run_privacy_matrix(driver: Driver, llm: FakeLLM) -> None:
    """Private/space x opted-in/not x same/other space, with a token test over every prompt.

    ``A`` opts in to sharing, ``B`` does not. Who may see what:

    * a reply in a private chat: that user's private memory only;
    * a reply in a space: that space's memory, plus the speaker's private
      memory only when the speaker opted in; never another space's.
    """
    llm.responder = summarize_everyone
    bot = driver.bot
    character = bot.characters.default.id
    await driver.dm("A", f"My secret word is {TOKENS['A']}.")
    await driver.dm("B", f"My secret word is {TOKENS['B']}.")
    await driver.share("A")
    for space in ("S1", "S2"):
        note = f"Note for this group only: {TOKENS[space]}"
        await driver.say("B", space, note, mention=False)
        key = ConversationKey.for_space(driver.platform, driver.space_id(space), character)
        await wait_recorded(bot, key, note)
    await idle(bot)

    prompts: dict[str, list[dict[str, Any]]] = {}

    async def ask(label: str, action: Any) -> None:
        before = len(llm.chat_requests)
        await action
        chats = [r for r in llm.chat_requests[before:] if not is_summary_request(r.json)]
        assert len(chats) == 1, f"{label}: expected one reply, got {len(chats)}"
        prompts[label] = chats[0].messages

    question = "What do you remember?"
    await ask("A in S1", driver.say("A", "S1", question, mention=True))
    await ask("B in S1", driver.say("B", "S1", question, mention=True))
    await ask("A in S2", driver.say("A", "S2", question, mention=True))
    await ask("B in S2", driver.say("B", "S2", question, mention=True))
    await ask("A in private", driver.dm("A", question))
    await ask("B in private", driver.dm("B", question))

    allowed = {
        "A in S1": {"S1", "A"},  # the space, and A's private memory: A opted in
        "B in S1": {"S1"},  # B did not opt in; A's sharing is for replies to A only
        "A in S2": {"S2", "A"},  # never the other space's
        "B in S2": {"S2"},
        "A in private": {"A"},  # nothing said in a space reaches a private chat
        "B in private": {"B"},
    }
    seen = {label: tokens_in(messages) for label, messages in prompts.items()}
    assert seen == allowed

    # And over every request the LLM ever received (replies and summaries): no prompt
    # mixes B's private memory with anything else, or one space's with the other's.
    for request in llm.chat_requests:
        found = tokens_in(request.messages)
        assert not ("B" in found and len(found) > 1), found
        assert not {"S1", "S2"} <= found, found
    # The spaces' own memory never took in a private token.
    assert bot.memory is not None
    for space in ("S1", "S2"):
        key = ConversationKey.for_space(driver.platform, driver.space_id(space), character)
        stored = await bot.memory.export(key)
        assert tokens_in(stored) == {space}
