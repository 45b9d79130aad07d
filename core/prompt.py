"""Assembling the messages sent to the LLM for one turn.

The order, top to bottom (each part only when the character has it):

1. system message:
   ``system_prompt``; lorebook entries positioned ``before_char``; the
   persona; ``Personality:``; ``Scenario:``; lorebook entries ``after_char``
   (the default position); example dialogue (within ``EXAMPLES_BUDGET_TOKENS``);
   what memory recalls (the latest summary, the most relevant older ones);
   plugin sections.
2. the recent buffer as chat history;
3. the user's message;
4. ``post_history_instructions`` as a last system message, after the history,
   as Character Card V2 specifies.

``{{char}}`` and ``{{user}}`` (and the V1 spellings ``<BOT>``/``<USER>``)
are resolved here, at prompt time: ``{{user}}`` is the speaker's display
name. The prompt's size depends on the buffer, K and the budgets, never on
how long the conversation has been.

In a shared space (``in_space``) every member's message starts with the
speaker's label in square brackets, taken from the stored message's data
(:func:`honeychat.core.spaces.speaker_label`), and the system prompt names
the speaker and the other participants of the recent buffer; memories the
speaker shared from their private chat come in a block of their own.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from honeychat.core import lorebook, spaces
from honeychat.core.characters import Character
from honeychat.core.memory.tokens import count_tokens
from honeychat.core.tools import history_messages as tool_history
from honeychat.core.types import MemoryContext, Role, StoredMessage, Summary

LLMMessage = dict[str, Any]

EXAMPLES_BUDGET_TOKENS = 600
"""Tokens the example dialogue may take; whole examples are dropped from the end beyond it."""
DEFAULT_USER_NAME = "User"

_PLACEHOLDER = re.compile(r"\{\{(char|user)\}\}|<(bot|user)>", re.IGNORECASE)
_START = re.compile(r"<START>", re.IGNORECASE)


def fill(text: str, character: Character, user_name: str | None) -> str:
    """``text`` with ``{{char}}`` and ``{{user}}`` replaced by the two names."""
    user = user_name or DEFAULT_USER_NAME

    def name(match: re.Match[str]) -> str:
        which = (match.group(1) or match.group(2)).lower()
        return character.name if which in ("char", "bot") else user

    return _PLACEHOLDER.sub(name, text)


def greetings(character: Character) -> list[str]:
    """The character's greetings: ``greeting`` first, then ``alternate_greetings``."""
    found = [g.strip() for g in [character.greeting, *character.alternate_greetings]]
    return [g for g in found if g] or [f"Hi, I'm {character.name}."]


def greeting(character: Character, user_name: str | None, choice: str = "") -> str:
    """A greeting, placeholders resolved: number ``choice`` (1-based), else a random one.

    Every adapter that greets (``/start``, a terminal session) uses this, so
    ``alternate_greetings`` and ``{{user}}`` work the same everywhere.
    """
    options = greetings(character)
    if choice.isdigit() and 1 <= int(choice) <= len(options):
        text = options[int(choice) - 1]
    else:
        text = random.choice(options)
    return fill(text, character, user_name)


def example_blocks(character: Character, user_name: str | None) -> list[str]:
    """Each example exchange as text, placeholders resolved, in the character's order."""
    user = user_name or DEFAULT_USER_NAME
    blocks = [
        f"{user}: {ex.user}\n{character.name}: {ex.character}" for ex in character.example_dialogue
    ]
    for block in _START.split(character.mes_example):
        if block.strip():
            blocks.append(fill(block.strip(), character, user_name))
    return blocks


def _within(blocks: Sequence[str], budget: int) -> list[str]:
    kept, used = [], 0
    for block in blocks:
        cost = count_tokens(block)
        if used + cost > budget:
            break
        kept.append(block)
        used += cost
    return kept


def _summary_block(title: str, summaries: Sequence[Summary]) -> str:
    lines = [title]
    lines += [f"- {s.text.strip()}" for s in summaries if s.text.strip()]
    return "\n".join(lines)


def _entries(fired: Sequence[lorebook.FiredEntry], before: bool) -> list[str]:
    return [
        f.entry.content.strip()
        for f in fired
        if (f.entry.position == "before_char") == before and f.entry.content.strip()
    ]


def system_prompt(
    character: Character,
    context: MemoryContext,
    sections: Sequence[str] = (),
    *,
    user_name: str | None = None,
    fired: Sequence[lorebook.FiredEntry] = (),
    examples_budget: int = EXAMPLES_BUDGET_TOKENS,
    in_space: bool = False,
) -> str:
    """The system prompt (see the module docstring for the order of its parts)."""
    parts: list[str] = []
    if character.system_prompt.strip():
        parts.append(character.system_prompt.replace("{{original}}", "").strip())
    parts += _entries(fired, before=True)
    if character.persona.strip():
        parts.append(character.persona.strip())
    if character.personality.strip():
        parts.append(f"{character.name}'s personality: {character.personality.strip()}")
    if character.scenario.strip():
        parts.append(f"Scenario: {character.scenario.strip()}")
    parts += _entries(fired, before=False)
    examples = _within(example_blocks(character, user_name), examples_budget)
    if examples:
        parts.append("Examples of how you talk:\n" + "\n\n".join(examples))
    parts = [fill(part, character, user_name) for part in parts]
    if context.latest_summary is not None:
        parts.append(
            _summary_block(
                "What happened most recently before the messages below:", [context.latest_summary]
            )
        )
    if context.relevant:
        earlier = "in this group" if in_space else "with this user"
        parts.append(
            _summary_block(
                f"Things you remember from earlier conversations {earlier} (use them when relevant):",
                context.relevant,
            )
        )
    if in_space:
        speaker = spaces.speaker_label(user_name, character.name)
        if context.shared:
            parts.append(
                _summary_block(
                    f"Things {speaker} told you in private and allows you to use here "
                    "(use them only when relevant):",
                    context.shared,
                )
            )
        others = spaces.participants(context.recent, character.name, besides=speaker)
        parts.append(spaces.space_section(speaker, others, character.name))
    parts.extend(section.strip() for section in sections if section and section.strip())
    return "\n\n".join(parts)


def history_messages(
    recent: Sequence[StoredMessage], current_seq: int | None, character_name: str | None = None
) -> list[LLMMessage]:
    """The recent buffer as chat messages, without the current user message.

    A reply that used tools is preceded by its tool calls and their (cut)
    results, as the model saw them; the LLM client leaves them out for a
    model that gets no tools. With ``character_name`` (a space), each member's
    message starts with its speaker label.
    """
    messages: list[LLMMessage] = []
    for m in recent:
        if current_seq is not None and m.seq == current_seq:
            continue
        if m.tools:
            messages += tool_history(m.tools)
        messages.append({"role": m.role.value, "content": _content(m, character_name)})
    return messages


def _content(message: StoredMessage, character_name: str | None) -> str:
    if character_name is None or message.role is not Role.USER:
        return message.text
    return spaces.attributed(message.text, spaces.speaker_label(message.speaker, character_name))


@dataclass(slots=True)
class Prompt:
    """The messages of one turn's request, and the lorebook entries that went into them."""

    messages: list[LLMMessage]
    fired: list[lorebook.FiredEntry] = field(default_factory=list)

    def lorebook_report(self) -> list[dict[str, Any]]:
        """What goes in ``turn.extras["lorebook_fired"]``."""
        return [f.report() for f in self.fired]


def assemble(
    character: Character,
    context: MemoryContext,
    user_text: str,
    *,
    sections: Sequence[str] = (),
    current_seq: int | None = None,
    user_name: str | None = None,
    examples_budget: int = EXAMPLES_BUDGET_TOKENS,
    in_space: bool = False,
) -> Prompt:
    """The request of one turn: system prompt, history, the user's message, post-history instructions."""
    if in_space:  # {{user}} and the speaker's label are the same safe name
        user_name = spaces.speaker_label(user_name, character.name)
    history = history_messages(context.recent, current_seq, character.name if in_space else None)
    scanned = [m["content"] for m in history if m["role"] != "tool" and m["content"]]
    scanned.append(user_text)
    fired = lorebook.scan(character.lorebook, scanned)
    messages: list[LLMMessage] = [
        {
            "role": "system",
            "content": system_prompt(
                character,
                context,
                sections,
                user_name=user_name,
                fired=fired,
                examples_budget=examples_budget,
                in_space=in_space,
            ),
        }
    ]
    messages += history
    if in_space:
        user_text = spaces.attributed(user_text, spaces.speaker_label(user_name, character.name))
    messages.append({"role": Role.USER.value, "content": user_text})
    if character.post_history_instructions.strip():
        text = character.post_history_instructions.replace("{{original}}", "").strip()
        messages.append({"role": "system", "content": fill(text, character, user_name)})
    return Prompt(messages, fired)
