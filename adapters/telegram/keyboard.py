"""Inline keyboards for :class:`~honeychat.core.types.Choice` buttons, and their callback data.

A button's callback data is the core :class:`~honeychat.core.choices.ChoiceCodec`'s
payload, within Telegram's 64 bytes: ``command:value``, or ``~digest`` for a longer
pair kept in Redis for 30 days (so such buttons work after a restart and on every
replica; an expired one asks the user to run the command again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from honeychat.core.choices import ChoiceCodec as CoreChoiceCodec
from honeychat.core.types import Choice

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

MAX_CALLBACK_BYTES = 64


class ChoiceCodec(CoreChoiceCodec):
    """The core codec at Telegram's callback-data limit, plus inline keyboards."""

    def __init__(self, bot: Bot | None = None) -> None:
        super().__init__(MAX_CALLBACK_BYTES, bot)

    def markup(self, choices: tuple[Choice, ...], per_row: int = 2) -> InlineKeyboardMarkup | None:
        """An inline keyboard, one button per choice, ``per_row`` a row (None without choices)."""
        if not choices:
            return None
        buttons = [
            InlineKeyboardButton(text=c.label, callback_data=self.encode(c)) for c in choices
        ]
        rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
        return InlineKeyboardMarkup(inline_keyboard=rows)
