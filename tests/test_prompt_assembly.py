"""Where each part of a character lands in the request, and /start greetings, through a real bot."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from card_kit import V2_CARD

from honeychat import hookimpl
from honeychat.core.cards import card_to_character, to_yaml
from honeychat.core.characters import Character
from honeychat.core.prompt import assemble
from honeychat.core.types import MemoryContext, Role, StoredMessage, Summary
from honeychat.testing.pytest_plugin import BotFactory, send


def sera(**changes: Any) -> Character:
    card = copy.deepcopy(V2_CARD)
    card["data"].update(changes)
    return card_to_character(card, character_id="sera").character


def stored(seq: int, role: Role, text: str) -> StoredMessage:
    return StoredMessage(seq=seq, role=role, text=text, at=datetime.now(UTC))


def test_every_part_lands_in_its_place() -> None:
    context = MemoryContext(
        recent=[
            stored(1, Role.USER, "I keep hearing wolves."),
            stored(2, Role.ASSISTANT, "They will not cross the stream."),
            stored(3, Role.USER, "Is the glade safe?"),
        ],
        latest_summary=Summary(
            conversation_id="c", text="Ada arrived hurt.", first_seq=0, last_seq=0
        ),
    )
    prompt = assemble(
        sera(),
        context,
        "Is the glade safe?",
        sections=["PLUGIN SECTION"],
        current_seq=3,
        user_name="Ada",
    )
    messages = prompt.messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "system"]
    system = messages[0]["content"]
    order = [
        "Write Seraphina Vale's next reply in a fictional roleplay.",  # system_prompt, filled
        "The glade is hidden by an old enchantment.",  # lorebook before_char
        "Seraphina Vale is a forest guardian",  # persona (card description)
        "Seraphina Vale's personality: gentle, wise, protective ✨ (très calme)",
        "Scenario: Ada wakes up in Seraphina Vale's glade after an accident.",
        "The wolves of the eastern wood serve the Shadow King.",  # lorebook after_char
        "Examples of how you talk:\nAda: Who are you?\nSeraphina Vale: A keeper of this glade.",
        "What happened most recently before the messages below:\n- Ada arrived hurt.",
        "PLUGIN SECTION",
    ]
    positions = [system.index(part) for part in order]
    assert positions == sorted(positions), positions
    assert "{{" not in system and "{{original}}" not in system
    # History, then the user's message, then post-history instructions last.
    assert messages[1]["content"] == "I keep hearing wolves."
    assert messages[3] == {"role": "user", "content": "Is the glade safe?"}
    assert messages[4] == {
        "role": "system",
        "content": "Stay in character as Seraphina Vale; never speak for Ada.",
    }
    assert prompt.lorebook_report()[0]["name"] == "entry 1"  # glade: insertion order 5 first
    assert {r["name"] for r in prompt.lorebook_report()} == {"entry 1", "wolves"}


def test_lorebook_entries_do_not_fire_without_their_keys() -> None:
    prompt = assemble(sera(), MemoryContext(), "Hello there.", user_name="Ada")
    assert prompt.fired == []
    assert "eastern wood" not in prompt.messages[0]["content"]
    assert "enchantment" not in prompt.messages[0]["content"]


def test_examples_stay_within_their_budget() -> None:
    many = "".join(
        f"<START>\n{{{{user}}}}: question {i}\n{{{{char}}}}: answer {i}\n" for i in range(200)
    )
    character = sera(mes_example=many)
    system = assemble(character, MemoryContext(), "hi", examples_budget=60).messages[0]["content"]
    assert "answer 0" in system and "answer 199" not in system
    none = assemble(character, MemoryContext(), "hi", examples_budget=0).messages[0]["content"]
    assert "Examples of how you talk" not in none


def test_user_placeholder_defaults_when_no_display_name() -> None:
    prompt = assemble(sera(), MemoryContext(), "hi")
    assert "Scenario: User wakes up" in prompt.messages[0]["content"]


def _install(directory: Path, character: Character | None = None, **changes: Any) -> None:
    card = copy.deepcopy(V2_CARD)
    card["data"].update(changes)
    imported = card_to_character(card, character_id="sera")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sera.yaml").write_text(to_yaml(imported.data), encoding="utf-8")


async def test_a_turn_records_fired_entries_and_sends_them(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    _install(tmp_path / "chars")
    seen: list[Any] = []

    class Spy:
        @hookimpl
        def honeychat_turn_complete(self, turn: Any) -> None:
            seen.append(turn.extras.get("lorebook_fired"))

    bot = await bot_factory(
        characters_dir=tmp_path / "chars", default_character="sera", plugins=[("spy", Spy())]
    )
    await send(bot, "What about the wolves?", user_name="Ada")
    assert "serve the Shadow King" in bot_factory.last_system_prompt()
    assert seen[-1] == [
        {"id": "1", "name": "wolves", "keys": ["wolves"], "tokens": seen[-1][0]["tokens"]}
    ]
    # The book scans 3 messages: "wolves" is still in [wolves?, reply, Nice weather.]...
    await send(bot, "Nice weather.", user_name="Ada")
    assert "serve the Shadow King" in bot_factory.last_system_prompt()
    # ...and out of [Nice weather., reply, Tell me a story.].
    await send(bot, "Tell me a story.", user_name="Ada")
    assert "serve the Shadow King" not in bot_factory.last_system_prompt()
    assert seen[-1] is None
    assert bot_factory.last_prompt()[-1]["content"].startswith("Stay in character")


async def test_start_greets_with_a_chosen_or_random_greeting(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    _install(tmp_path / "chars")
    bot = await bot_factory(characters_dir=tmp_path / "chars", default_character="sera")
    first = await send(bot, "/start 1", user_name="Ada")
    assert first.last_text == "*Seraphina Vale kneels beside you.* Easy, Ada. You're safe here."
    second = await send(bot, "/start 2", user_name="Ada")
    assert second.last_text == "*The fire crackles.* You're awake, Ada."
    seen = set()
    for _ in range(40):
        seen.add((await send(bot, "/start", user_name="Ada")).last_text)
    assert len(seen) == 3
    assert json.dumps(sorted(seen)).count("{{") == 0


def test_start_markers_split_examples_wherever_they_sit() -> None:
    character = sera(mes_example="<START>{{user}}: hi\n{{char}}: hello<start>\n{{user}}: bye")
    system = assemble(character, MemoryContext(), "x", user_name="Ada").messages[0]["content"]
    assert "Ada: hi\nSeraphina Vale: hello\n\nAda: bye" in system
    assert "<START>" not in system.upper()
