"""Rendering a Reply's choices as Discord buttons or a select menu, and reading clicks back.

The components are stateless: each one's ``custom_id`` carries the command
and value to run, so clicks work after a restart and nothing is kept in
memory. The view is stopped before sending, which tells discord.py not to
store it; clicks arrive through ``on_interaction`` and :func:`parse_custom_id`.
"""

from __future__ import annotations

import logging

import discord

from honeychat.core.types import Choice

log = logging.getLogger(__name__)

PREFIX = "hc:"
SELECT_ID = PREFIX + "select"
MAX_BUTTONS = 5
"""Up to this many choices are buttons (one row); more become a select menu."""
MAX_OPTIONS = 25
_ID_LIMIT = 100


def _encode(choice: Choice) -> str:
    return f"{choice.command}:{choice.value}"


def choices_view(choices: tuple[Choice, ...]) -> discord.ui.View | None:
    """A view with one button per choice, or a select menu for many; None without choices."""
    usable = [c for c in choices if len(PREFIX + _encode(c)) <= _ID_LIMIT]
    if len(usable) < len(choices):
        log.warning(
            "dropped %d choice(s) whose value is too long for Discord", len(choices) - len(usable)
        )
    if not usable:
        return None
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


def parse_custom_id(custom_id: str, values: list[str] | None = None) -> tuple[str, str] | None:
    """``(command, value)`` for a click on one of our components, else None."""
    if custom_id == SELECT_ID:
        encoded = values[0] if values else ""
    elif custom_id.startswith(PREFIX):
        encoded = custom_id[len(PREFIX) :]
    else:
        return None
    command, sep, value = encoded.partition(":")
    return (command, value) if sep and command else None
