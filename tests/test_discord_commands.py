"""Slash commands and component clicks, sent as INTERACTION_CREATE through discord.py's client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from discord_kit import DiscordRig, discord_rig

from honeychat import hookimpl
from honeychat.adapters.discord.respond import DEFER_AFTER
from honeychat.core.textsplit import split_text
from honeychat.core.turn import Command, CommandCall
from honeychat.core.types import Choice, Reply

pytestmark = pytest.mark.slow

EPHEMERAL = 64


def callback_for(rig: DiscordRig, interaction: dict[str, Any]) -> Any:
    """The recorded callback request answering one interaction, if any."""
    return rig.callback(interaction)


def buttons(message_data: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message_data.get("components", []) for c in row["components"]]


async def test_commands_are_synced_on_startup(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        synced = {c["name"]: c for c in rig.fake.commands}
        assert set(synced) == set(rig.bot.commands)
        (name_option,) = synced["character"]["options"]
        assert name_option["name"] == "name"
        assert {c["value"] for c in name_option["choices"]} == {
            c.id for c in rig.bot.characters.all()
        }
        (scope,) = synced["forget"]["options"]  # /forget everything: every character
        assert scope["required"] is False
        assert [c["value"] for c in scope["choices"]] == ["everything"]


async def test_help_is_ephemeral(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        interaction = await rig.fake.send_interaction(rig.fake.user("amy"), command="help")
        body = await rig.until(lambda: callback_for(rig, interaction))
        assert body["type"] == 4
        assert body["data"]["flags"] & EPHEMERAL
        assert "/forget" in body["data"]["content"]
        assert body["data"]["allowed_mentions"]["parse"] == []


async def test_character_picker_and_choice_click(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        ben = rig.fake.user("ben")
        listing = await rig.fake.send_interaction(ben, command="character", dm=True)
        body = await rig.until(lambda: callback_for(rig, listing))
        shown = buttons(body["data"])
        assert {b["custom_id"] for b in shown} == {
            f"hc:character:{c.id}" for c in rig.bot.characters.all()
        }

        target = next(c for c in rig.bot.characters.all() if c.id != rig.bot.characters.default.id)
        sent = rig.fake.interaction_response(listing["id"])
        click = await rig.fake.send_interaction(
            ben, custom_id=f"hc:character:{target.id}", message=sent, dm=True
        )
        picked = await rig.until(lambda: callback_for(rig, click))
        assert picked["type"] == 4  # the listing was public: the pick is a new message
        assert f"You're now talking with {target.name}" in picked["data"]["content"]
        assert (await rig.bot.current_character("discord", ben["id"])).id == target.id


async def test_character_option_switches_directly(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        cleo = rig.fake.user("cleo")
        target = next(c for c in rig.bot.characters.all() if c.id != rig.bot.characters.default.id)
        interaction = await rig.fake.send_interaction(
            cleo, command="character", options={"name": target.id}, dm=True
        )
        body = await rig.until(lambda: callback_for(rig, interaction))
        assert f"You're now talking with {target.name}" in body["data"]["content"]
        # One conversation per (user, character): a DM now talks to the chosen character.
        rig.llm.script(["hi from the new character"])
        msg = await rig.fake.send_message(cleo, "hello", dm=True)
        await rig.until(lambda: rig.fake.texts_in(msg["channel_id"]))
        assert target.name in rig.llm.last_messages()[0]["content"]


async def test_forget_asks_privately_then_confirm_button_erases(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        dan = rig.fake.user("dan")
        ask = await rig.fake.send_interaction(dan, command="forget")
        body = await rig.until(lambda: callback_for(rig, ask))
        assert body["data"]["flags"] & EPHEMERAL
        ids = [b["custom_id"] for b in buttons(body["data"])]
        # In a server channel, for an admin (the fake's @everyone may do anything):
        # the whole channel, or only what they said there.
        assert ids == ["hc:forget:space", "hc:forget:mine", "hc:forget:cancel"]

        ephemeral_message = rig.fake.message_payload(
            rig.fake.channel_id, rig.fake.bot_user, body["data"]["content"]
        )
        ephemeral_message["flags"] = EPHEMERAL
        ephemeral_message["components"] = body["data"]["components"]
        click = await rig.fake.send_interaction(
            dan, custom_id="hc:forget:space", message=ephemeral_message
        )
        done = await rig.until(lambda: callback_for(rig, click))
        assert done["type"] == 7  # the private question is replaced by the answer
        assert done["data"]["content"].startswith("Done.")
        assert done["data"]["components"] == []


async def test_memory_is_ephemeral(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        interaction = await rig.fake.send_interaction(
            rig.fake.user("eve"), command="memory", dm=True
        )
        body = await rig.until(lambda: callback_for(rig, interaction))
        assert body["type"] == 4
        assert body["data"]["flags"] & EPHEMERAL
        assert body["data"]["content"]


async def test_replayed_interaction_is_answered_once(bot_factory: Any) -> None:
    async with discord_rig(bot_factory) as rig:
        fay = rig.fake.user("fay")
        first = await rig.fake.send_interaction(fay, command="help")
        await rig.until(lambda: callback_for(rig, first))
        await rig.fake.dispatch("INTERACTION_CREATE", first)  # the same interaction again
        second = await rig.fake.send_interaction(fay, command="help")
        await rig.until(lambda: callback_for(rig, second))
        assert (
            len(rig.fake.requests_matching("POST", rf"/interactions/{first['id']}/[^/]+/callback"))
            == 1
        )


FRUITS = ("apple", "banana", "cherry", "date", "elderberry", "fig", "grape")
LONG = "\n\n".join((f"Paragraph {i}. " + "All work and no play. " * 30).strip() for i in range(7))


async def pick(call: CommandCall) -> Reply:
    if call.args:
        return Reply(f"You picked {call.args}{' from the menu' if call.from_choice else ''}.")
    return Reply("Pick a fruit:", choices=tuple(Choice(f.title(), "pick", f) for f in FRUITS))


async def slow(call: CommandCall) -> Reply:
    await asyncio.sleep(DEFER_AFTER + 0.3)
    return Reply(LONG)


class ExtraCommands:
    """A real plugin adding two commands the built-in ones don't exercise."""

    @hookimpl
    def honeychat_register_commands(self, bot: Any) -> list[Command]:
        return [Command("pick", "Pick a fruit", pick), Command("slow", "Takes its time", slow)]


async def test_many_choices_become_a_select_menu(bot_factory: Any) -> None:
    async with discord_rig(bot_factory, plugins=[("extra", ExtraCommands())]) as rig:
        gus = rig.fake.user("gus")
        ask = await rig.fake.send_interaction(gus, command="pick")
        body = await rig.until(lambda: callback_for(rig, ask))
        (select,) = buttons(body["data"])
        assert select["type"] == 3 and select["custom_id"] == "hc:select"
        assert [o["value"] for o in select["options"]] == [f"pick:{f}" for f in FRUITS]

        message = rig.fake.interaction_response(ask["id"])
        click = await rig.fake.send_interaction(
            gus, custom_id="hc:select", values=["pick:fig"], message=message
        )
        picked = await rig.until(lambda: callback_for(rig, click))
        assert picked["data"]["content"] == "You picked fig from the menu."


async def test_slow_command_is_deferred_and_long_reply_split(bot_factory: Any) -> None:
    async with discord_rig(bot_factory, plugins=[("extra", ExtraCommands())]) as rig:
        ask = await rig.fake.send_interaction(rig.fake.user("hal"), command="slow")
        deferred = await rig.until(lambda: callback_for(rig, ask))
        assert deferred["type"] == 5 and deferred["data"]["flags"] & EPHEMERAL
        expected = split_text(LONG, 2000)
        assert len(expected) > 1

        def all_followups() -> list[Any]:
            found = rig.fake.requests_matching("POST", r"/webhooks/\d+/[^/]+")
            return found if len(found) >= len(expected) else []

        texts = [f.json["content"] for f in await rig.until(all_followups)]
        assert texts == expected
        assert all(len(t) <= 2000 for t in texts)
        assert "\n\n".join(texts) == LONG
