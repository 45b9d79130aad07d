"""Block Kit rendering of a :class:`Reply`: its text, and its choices as a select menu."""

from __future__ import annotations

from typing import Any

from honeychat.adapters.slack.mrkdwn import to_mrkdwn
from honeychat.core.choices import ChoiceCodec
from honeychat.core.types import Choice, Reply

CHOICE_ACTION_ID = "honeychat_choice"
"""``action_id`` of the select menu; the block action listener matches it."""

_SECTION_LIMIT = 3000
_OPTION_TEXT_LIMIT = 75
_OPTION_VALUE_LIMIT = 150
_MAX_OPTIONS = 100


def slack_codec(bot: Any = None) -> ChoiceCodec:
    """The core choice codec at Slack's option-value limit (150 characters)."""
    return ChoiceCodec(_OPTION_VALUE_LIMIT, bot)


_MEMORY_CODEC = slack_codec()


def render_reply(reply: Reply, codec: ChoiceCodec | None = None) -> dict[str, Any]:
    """Keyword arguments for ``chat.postMessage`` / ``respond``: ``text`` and maybe ``blocks``.

    ``text`` is always set (it is the notification and accessibility text);
    ``blocks`` only when the reply offers choices.
    """
    text = to_mrkdwn(reply.text)
    kwargs: dict[str, Any] = {"text": text}
    encode = (codec or _MEMORY_CODEC).encode
    options = [_option(c, encode(c)) for c in reply.choices]
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


def _option(choice: Choice, value: str) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": _cut(choice.label, _OPTION_TEXT_LIMIT) or "?"},
        "value": value,
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
