"""Discord slash commands built from the core's chat commands (``bot.commands``).

Every honeychat :class:`~honeychat.core.turn.Command` becomes one global
``app_commands.Command`` with at most one optional string argument. Argument
choices from ``Command.arg_choices`` become native choices (autocomplete when
there are more than Discord's 25). The callback only forwards to ``run``: the
adapter runs the command through the core and renders the Reply.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from honeychat.core.turn import Command

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

SlashRunner = Callable[[discord.Interaction, str, str], Awaitable[None]]
"""``run(interaction, command_name, args)``: what every slash command does."""

MAX_CHOICES = 25
_CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True)


def _description(text: str) -> str:
    text = " ".join(text.split()) or "honeychat command"
    return text if len(text) <= 100 else text[:99] + "…"


def _choice_pairs(bot: "Bot", command: Command) -> list[tuple[str, str]]:
    if command.arg_choices is None:
        return []
    return [(label[:100], value[:100]) for label, value in command.arg_choices(bot)]


def build_slash_command(
    bot: "Bot", command: Command, run: SlashRunner
) -> app_commands.Command[Any, ..., Any]:
    """One app command for a core command; its callback calls ``run``."""
    name = command.name

    if command.arg_name is None:

        async def plain(interaction: discord.Interaction) -> None:
            await run(interaction, name, "")

        return app_commands.Command(
            name=name,
            description=_description(command.description),
            callback=plain,
            allowed_contexts=_CONTEXTS,
        )

    async def with_arg(interaction: discord.Interaction, arg: str | None = None) -> None:
        await run(interaction, name, arg or "")

    arg_name = command.arg_name.lower()
    app_commands.rename(arg=arg_name)(with_arg)
    app_commands.describe(arg=arg_name.replace("_", " "))(with_arg)
    pairs = _choice_pairs(bot, command)
    if 0 < len(pairs) <= MAX_CHOICES:
        app_commands.choices(
            arg=[app_commands.Choice(name=label, value=value) for label, value in pairs]
        )(with_arg)
    slash: app_commands.Command[Any, ..., Any] = app_commands.Command(
        name=name,
        description=_description(command.description),
        callback=with_arg,
        allowed_contexts=_CONTEXTS,
    )
    if len(pairs) > MAX_CHOICES:

        async def complete(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            needle = current.lower()
            matches = [
                (label, value)
                for label, value in _choice_pairs(bot, command)
                if needle in label.lower()
            ]
            return [
                app_commands.Choice(name=label, value=value)
                for label, value in matches[:MAX_CHOICES]
            ]

        slash.autocomplete("arg")(complete)
    return slash


def install_commands(
    tree: app_commands.CommandTree[Any], bot: "Bot", run: SlashRunner
) -> list[str]:
    """Add one slash command per core command to ``tree``; returns their names."""
    names = []
    for command in bot.commands.values():
        tree.add_command(build_slash_command(bot, command, run), override=True)
        names.append(command.name)
    return names
