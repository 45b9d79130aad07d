"""Assembling the messages sent to the LLM for one turn.

The system prompt holds the persona, example dialogue, what memory recalls
(the latest summary and the most relevant older ones) and plugin sections.
The recent buffer follows as chat history, then the user's message. Its size
depends on the buffer and K, never on how long the conversation has been.
"""

from __future__ import annotations

from collections.abc import Sequence

from honeychat.core.characters import Character
from honeychat.core.types import MemoryContext, Role, StoredMessage, Summary

LLMMessage = dict[str, str]


def _summary_block(title: str, summaries: Sequence[Summary]) -> str:
    lines = [title]
    lines += [f"- {s.text.strip()}" for s in summaries if s.text.strip()]
    return "\n".join(lines)


def system_prompt(
    character: Character, context: MemoryContext, sections: Sequence[str] = ()
) -> str:
    """The system prompt: persona, examples, memory and plugin sections."""
    parts = [character.persona.strip()]
    if character.example_dialogue:
        examples = "\n".join(
            f"User: {ex.user}\n{character.name}: {ex.character}"
            for ex in character.example_dialogue
        )
        parts.append("Examples of how you talk:\n" + examples)
    if context.latest_summary is not None:
        parts.append(
            _summary_block(
                "What happened most recently before the messages below:", [context.latest_summary]
            )
        )
    if context.relevant:
        parts.append(
            _summary_block(
                "Things you remember from earlier conversations with this user (use them when relevant):",
                context.relevant,
            )
        )
    parts.extend(section.strip() for section in sections if section and section.strip())
    return "\n\n".join(parts)


def history_messages(recent: Sequence[StoredMessage], current_seq: int | None) -> list[LLMMessage]:
    """The recent buffer as chat messages, without the current user message."""
    return [
        {"role": m.role.value, "content": m.text}
        for m in recent
        if current_seq is None or m.seq != current_seq
    ]


def build_messages(
    character: Character,
    context: MemoryContext,
    user_text: str,
    *,
    sections: Sequence[str] = (),
    current_seq: int | None = None,
) -> list[LLMMessage]:
    """All messages for the chat-completions request of one turn."""
    messages: list[LLMMessage] = [
        {"role": "system", "content": system_prompt(character, context, sections)}
    ]
    messages += history_messages(context.recent, current_seq)
    messages.append({"role": Role.USER.value, "content": user_text})
    return messages
