"""Scripted behaviour for :class:`~honeychat.testing.fake_llm.FakeLLM`: summaries that keep facts.

A real summarizer keeps the user's facts; tests and benchmarks need a
deterministic stand-in that does the same, so retrieval has something true
to find. :func:`keeping_user_lines` answers the summarizer's requests with the
user's own messages, one per line with its message number (the format
``SUMMARY_INSTRUCTIONS`` asks for), and every other request with a chat reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from honeychat.core.memory.summarizer import SUMMARY_INSTRUCTIONS

_SUMMARY_PREFIX = SUMMARY_INSTRUCTIONS.split("{", 1)[0]


def is_summary_prompt(system: str) -> bool:
    """Whether a system prompt is the summarizer's rather than a character's."""
    return system.startswith(_SUMMARY_PREFIX)


def is_summary_request(request: dict[str, Any]) -> bool:
    """Whether a chat-completions request body comes from the summarizer."""
    messages = request.get("messages") or []
    return bool(messages) and is_summary_prompt(str(messages[0].get("content", "")))


def transcript(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The message records (``n``, ``from``, ``text``) of a summary request's transcript."""
    records = []
    for line in str(request["messages"][-1]["content"]).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and {"n", "from", "text"} <= record.keys():
            records.append(record)
    return records


def user_lines(request: dict[str, Any]) -> list[str]:
    """The user's messages in the transcript a summary request carries."""
    return [str(r["text"]) for r in transcript(request) if r["from"] == "user"]


def keeping_user_lines(
    chat_reply: Callable[[dict[str, Any]], str] | str,
    *,
    prefix: str = "",
    max_words: int | None = None,
) -> Callable[[dict[str, Any]], str]:
    """A responder: a summary is one line per user message, ``prefix`` + its text, ending
    with its number in brackets as the summarizer asks (``max_words`` in all, the last line
    cut); chat requests get ``chat_reply`` (a fixed string or a function of the request)."""

    def respond(request: dict[str, Any]) -> str:
        if is_summary_request(request):
            lines = []
            left = max_words
            for record in transcript(request):
                if record["from"] != "user":
                    continue
                words = (prefix + str(record["text"])).split()
                if left is not None:
                    words = words[:left]
                    left -= len(words)
                if words:
                    lines.append(f"{' '.join(words)} [{record['n']}]")
            return "\n".join(lines)
        return chat_reply(request) if callable(chat_reply) else chat_reply

    return respond
