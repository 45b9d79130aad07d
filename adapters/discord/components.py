"""Rendering a Reply's choices as Discord buttons or a select menu, and reading clicks back.

Each component's ``custom_id`` (or select option value) carries the core
:class:`~honeychat.core.choices.ChoiceCodec`'s payload: ``command:value``, or
``~digest`` for a pair too long for Discord's 100 characters, kept in Redis
for 30 days, so clicks work after a restart and on every replica. The view is stopped before sending, which tells discord.py not to
store it; clicks arrive through ``on_interaction`` and :func:`parse_custom_id`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from honeychat.core.choices import ChoiceCodec
from honeychat.core.types import Choice

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

PREFIX = "hc:"
SELECT_ID = PREFIX + "select"
MAX_BUTTONS = 5
"""Up to this many choices are buttons (one row); more become a select menu."""
MAX_OPTIONS = 25
_ID_LIMIT = 100


def discord_codec(bot: Bot | None = None) -> ChoiceCodec:
    """The choice codec at Discord's limit (a custom id holds ``hc:`` and the payload)."""
    return ChoiceCodec(_ID_LIMIT - len(PREFIX), bot)


_MEMORY_CODEC = discord_codec()


def choices_view(
    choices: tuple[Choice, ...], codec: ChoiceCodec | None = None
) -> discord.ui.View | None:
    """A view with one button per choice, or a select menu for many; None without choices."""
    usable = list(choices)
    if not usable:
        return None
    _encode = (codec or _MEMORY_CODEC).encode
    view = discord.ui.View(timeout=None)
    if len(usable) <= MAX_BUTTONS:
        seen: set[str] = set()
        for choice in usable:
            custom_id = PREFIX + _encode(choice)
            if custom_id in seen:
                continue
            seen.add(custom_id)
            view.add_item(
                discord.ui.Button(
                    label=choice.label[:80],
                    custom_id=custom_id,
                    style=discord.ButtonStyle.secondary,
                )
            )
    else:
        options = [
            discord.SelectOption(label=c.label[:100], value=_encode(c))
            for c in usable[:MAX_OPTIONS]
        ]
        view.add_item(
            discord.ui.Select(custom_id=SELECT_ID, options=options, placeholder="Choose…")
        )
    # A stopped view is sent as plain components and never stored by discord.py.
    view.stop()
    return view


def choice_payload(custom_id: str, values: list[str] | None = None) -> str | None:
    """The codec payload of a click on one of our components, else None."""
    if custom_id == SELECT_ID:
        return values[0] if values else None
    if custom_id.startswith(PREFIX):
        return custom_id[len(PREFIX) :]
    return None
