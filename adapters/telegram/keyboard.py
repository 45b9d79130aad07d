"""Inline keyboards for :class:`~honeychat.core.types.Choice` buttons, and their callback data.

A button's callback data is ``command:value`` (Telegram allows 64 bytes).
A pair too long for that is kept in a bounded in-memory table and the button
carries ``~<key>`` instead; such a button stops working after a restart, and
the user is then asked to run the command again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from honeychat.core.types import Choice

MAX_CALLBACK_BYTES = 64
_LONG_PREFIX = "~"


class ChoiceCodec:
    """Encodes choices into callback data and back."""

    def __init__(self, max_long: int = 1024) -> None:
        self._long: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._max_long = max_long

    def encode(self, choice: Choice) -> str:
        """Callback data for ``choice``, always at most 64 bytes."""
        data = f"{choice.command}:{choice.value}"
        if len(data.encode()) <= MAX_CALLBACK_BYTES and not data.startswith(_LONG_PREFIX):
            return data
        key = _LONG_PREFIX + hashlib.sha256(data.encode()).hexdigest()[:32]
        self._long[key] = (choice.command, choice.value)
        self._long.move_to_end(key)
        while len(self._long) > self._max_long:
            self._long.popitem(last=False)
        return key

    def decode(self, data: str) -> tuple[str, str] | None:
        """``(command, value)`` of a button's data, or None when it is unknown or malformed."""
        if data.startswith(_LONG_PREFIX):
            return self._long.get(data)
        command, sep, value = data.partition(":")
        if not sep or not command:
            return None
        return command, value

    def markup(self, choices: tuple[Choice, ...], per_row: int = 2) -> InlineKeyboardMarkup | None:
        """An inline keyboard, one button per choice, ``per_row`` a row (None without choices)."""
        if not choices:
            return None
        buttons = [
            InlineKeyboardButton(text=c.label, callback_data=self.encode(c)) for c in choices
        ]
        rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
        return InlineKeyboardMarkup(inline_keyboard=rows)
