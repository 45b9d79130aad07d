"""Built-in plugin: the chat commands every platform offers.

``/start``, ``/help``, ``/character``, ``/forget`` (``/forget everything``:
every character's memory of the user on this platform), ``/memory`` and
``/space``. Adapters expose them natively (Telegram commands, Discord and Slack
slash commands). In a shared space some behave differently (see
:mod:`honeychat.plugins.space_commands`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from honeychat import hookimpl
from honeychat.core.erase import ErasureIncomplete, UserRef, erase_user
from honeychat.core.forget import clear_conversation
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.prompt import greeting
from honeychat.core.turn import Command, CommandCall
from honeychat.core.types import Choice, Reply
from honeychat.plugins import space_commands

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

_CONFIRM = "confirm"
_CANCEL = "cancel"
_EVERYTHING = "everything"


async def start(call: CommandCall) -> Reply:
    """``/start`` greets with a random greeting; ``/start 2`` picks the second one."""
    return Reply(greeting(call.character, call.message.user_name, call.args.strip()))


async def help_(call: CommandCall) -> Reply:
    lines = [f"I'm {call.character.name}. Just talk to me; I remember what you tell me.", ""]
    lines += [f"/{c.name} - {c.description}" for c in call.bot.commands.values()]
    return Reply("\n".join(lines), ephemeral=True)


def _character_choices(bot: Bot) -> list[tuple[str, str]]:
    return [(c.name, c.id) for c in bot.characters.all()]


async def character(call: CommandCall) -> Reply:
    wanted = call.args.strip().lower()
    if not wanted:
        choices = tuple(
            Choice(
                f"{c.name}{' (current)' if c.id == call.character.id else ''}", "character", c.id
            )
            for c in call.bot.characters.all()
        )
        listing = "\n".join(f"- {c.name}: {c.description}" for c in call.bot.characters.all())
        return Reply(f"Who would you like to talk to?\n{listing}", choices=choices)
    if call.conversation.is_space:
        return await space_commands.character(call, wanted)
    try:
        chosen = await call.bot.set_character(call.message.platform, call.message.user_id, wanted)
    except KeyError:
        known = ", ".join(c.id for c in call.bot.characters.all())
        return Reply(
            f"There is no character called '{wanted}'. Choose one of: {known}.", ephemeral=True
        )
    return Reply(
        f"You're now talking with {chosen.name}.\n\n{greeting(chosen, call.message.user_name, '1')}"
    )


async def forget(call: CommandCall) -> Reply:
    if call.conversation.is_space:
        return await space_commands.forget(call)
    answer = call.args.strip().lower()
    if answer.split(" ")[0] == _EVERYTHING:
        return await forget_everything(call, answer.split(" ")[-1])
    if answer == _CANCEL:
        return Reply("Okay, I'll keep remembering.", ephemeral=True)
    if answer != _CONFIRM:
        return Reply(
            f"This erases everything {call.character.name} remembers about your chats. Are you sure?",
            choices=(
                Choice("Yes, forget everything", "forget", _CONFIRM),
                Choice("Cancel", "forget", _CANCEL),
            ),
            ephemeral=True,
        )
    try:
        await clear_conversation(call.bot, call.conversation)
    except StoreUnavailable:
        return Reply(
            "I couldn't reach my memory just now, so nothing was erased. Please try again later."
        )
    return Reply(f"Done. {call.character.name} has forgotten your conversations. Fresh start!")


async def forget_everything(call: CommandCall, answer: str) -> Reply:
    """``/forget everything``: every character's memory of the user on this platform."""
    if answer == _CANCEL:
        return Reply("Okay, I'll keep remembering.", ephemeral=True)
    if answer != _CONFIRM:
        return Reply(
            "This erases everything every character here remembers about you, and your "
            "settings. Are you sure?",
            choices=(
                Choice("Yes, erase everything", "forget", f"{_EVERYTHING} {_CONFIRM}"),
                Choice("Cancel", "forget", f"{_EVERYTHING} {_CANCEL}"),
            ),
            ephemeral=True,
        )
    user = UserRef(call.message.user_id, call.message.platform)
    try:
        erasure = await erase_user(call.bot, user)
    except ErasureIncomplete:
        return Reply(
            "I couldn't reach part of my memory, so only part of it was erased. "
            "Please run /forget everything again later to finish."
        )
    except StoreUnavailable:
        return Reply(
            "I couldn't reach my memory just now, so nothing was erased. Please try again later."
        )
    count = len(erasure.conversations)
    return Reply(
        f"Done. Everything about you is erased ({_count(count, 'conversation', 'conversations')})."
        " Fresh start!"
    )


async def memory(call: CommandCall) -> Reply:
    verb, _, value = call.args.strip().lower().partition(" ")
    if verb == "share":  # "/memory share on"; Discord's option "share" gives "on" alone
        return await space_commands.share(call, value.strip())
    if verb in ("on", "off"):
        return await space_commands.share(call, verb)
    data = await call.bot.plugins.first(
        "honeychat_export_memory", conversation=call.conversation, bot=call.bot
    )
    if not data:
        return Reply("My memory is switched off right now.", ephemeral=True)
    summaries = data.get("summaries", [])
    recent = data.get("recent", [])
    if not summaries and not recent:
        return Reply(
            f"{call.character.name} doesn't remember anything about you yet.", ephemeral=True
        )
    lines = [f"What {call.character.name} remembers:"]
    for item in summaries[-3:]:
        lines.append(f"- {_shorten(item['text'], 300)}")
    lines.append(
        f"({_count(len(summaries), 'memory', 'memories')} of earlier chats, "
        f"and the last {_count(len(recent), 'message', 'messages')} word for word.)"
    )
    if data.get("unavailable"):
        lines.append(
            "Part of my memory is unreachable right now: " + ", ".join(data["unavailable"]) + "."
        )
    return Reply("\n".join(lines), ephemeral=True)


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@hookimpl
def honeychat_register_commands(bot: Bot) -> list[Command]:
    return [
        Command("start", "Meet your character", start, arg_name="greeting"),
        Command("help", "What I can do", help_),
        Command(
            "character",
            "Choose who to talk to",
            character,
            arg_name="name",
            arg_choices=_character_choices,
        ),
        Command(
            "forget",
            "Erase what I remember about you",
            forget,
            arg_name="scope",
            arg_choices=lambda bot: [("Everything, with every character", _EVERYTHING)],
        ),
        Command("memory", "What I remember (/memory share on|off)", memory, arg_name="share"),
        Command(
            "space",
            "How I answer in this group or channel",
            space_commands.space,
            arg_name="policy",
        ),
    ]
