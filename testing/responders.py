"""Scripted behaviour for :class:`~honeychat.testing.fake_llm.FakeLLM`: summaries that keep facts.

A real summarizer keeps the user's facts; tests and benchmarks need a
deterministic stand-in that does the same, so retrieval has something true
to find. :func:`keeping_user_lines` answers the summarizer's requests with the
user's own lines and every other request with a chat reply.
"""

from __future__ import annotations

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


def user_lines(request: dict[str, Any]) -> list[str]:
    """The user's lines of the transcript a summary request carries."""
    transcript = str(request["messages"][-1]["content"])
    return [
        line.removeprefix("User:").strip()
        for line in transcript.splitlines()
        if line.startswith("User:")
    ]


def keeping_user_lines(
    chat_reply: Callable[[dict[str, Any]], str] | str,
    *,
    prefix: str = "",
    max_words: int | None = None,
) -> Callable[[dict[str, Any]], str]:
    """A responder: summaries are ``prefix`` + the user's lines (cut to ``max_words``);
    chat requests get ``chat_reply`` (a fixed string or a function of the request)."""

    def respond(request: dict[str, Any]) -> str:
        if is_summary_request(request):
            words = (prefix + " ".join(user_lines(request))).split()
            return " ".join(words[:max_words] if max_words is not None else words)
        return chat_reply(request) if callable(chat_reply) else chat_reply

    return respond
