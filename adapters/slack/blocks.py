"""Block Kit rendering of a :class:`Reply`: its text, and its choices as a select menu."""

from __future__ import annotations

from typing import Any

from honeychat.adapters.slack.mrkdwn import to_mrkdwn
from honeychat.core.types import Choice, Reply

CHOICE_ACTION_ID = "honeychat_choice"
"""``action_id`` of the select menu; the block action listener matches it."""

_SECTION_LIMIT = 3000
_OPTION_TEXT_LIMIT = 75
_OPTION_VALUE_LIMIT = 150
_MAX_OPTIONS = 100


def encode_choice(choice: Choice) -> str:
    """Pack a choice into an option value: ``command:value`` (command names have no colon)."""
    return f"{choice.command}:{choice.value}"


def decode_choice(value: str) -> tuple[str, str] | None:
    """Inverse of :func:`encode_choice`; ``None`` when the value is not ours."""
    command, sep, arg = value.partition(":")
    if not sep or not command:
        return None
    return command, arg


def render_reply(reply: Reply) -> dict[str, Any]:
    """Keyword arguments for ``chat.postMessage`` / ``respond``: ``text`` and maybe ``blocks``.

    ``text`` is always set (it is the notification and accessibility text);
    ``blocks`` only when the reply offers choices.
    """
    text = to_mrkdwn(reply.text)
    kwargs: dict[str, Any] = {"text": text}
    options = [_option(c) for c in reply.choices if len(encode_choice(c)) <= _OPTION_VALUE_LIMIT]
    if options:
        kwargs["blocks"] = [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_LIMIT) or " "},
            },
            {
                "type": "actions",
                "block_id": "honeychat_choices",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": CHOICE_ACTION_ID,
                        "placeholder": {"type": "plain_text", "text": "Choose…"},
                        "options": options[:_MAX_OPTIONS],
                    }
                ],
            },
        ]
    return kwargs


def _option(choice: Choice) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": _cut(choice.label, _OPTION_TEXT_LIMIT) or "?"},
        "value": encode_choice(choice),
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
