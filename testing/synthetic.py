"""Synthetic conversations with planted facts, in the recall benchmark's operator format.

:func:`conversation` writes a deterministic (seeded) chat between a user and a
character: everyday filler, with facts about the user planted at spread-out
messages, then questions whose answers are those facts, each with the ids of
the messages that hold it (its evidence). Some facts take two messages far
apart (multi-hop). Every user message also gets a short third-person "oracle
fact" with its source message, which stands in for an LLM's summary when no
LLM is reachable.

The output is one conversation of the format ``bench/recall.py`` reads beside
LoCoMo's (documented in ``docs/performance.md``)::

    {"id": str, "user": str, "assistant": str,
     "messages": [{"id": str, "role": "user" | "assistant", "text": str, "at": ISO time}],
     "facts": [{"text": str, "evidence": [message id, ...]}],
     "questions": [{"question": str, "evidence": [message id, ...], "category": str}]}

Tests use it so that the recall floor needs no dataset beside the repository;
``bench/synthetic_conversation.py`` writes files for the benchmark's long case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

NAMES = """Ana Bruno Carla Dmitri Elif Farah Goran Hana Ivo Jana Kofi Lena Mateo Nadia Otto Priya
Quentin Rosa Sven Tariq Uma Viktor Wen Ximena Yusuf Zora Aiko Bjorn Chidi Dalia Emre Freya Gus
Ines Jonas Kira Luca Mira Nils Oona Pavel Rhea Soren Talia Ugo Vera Wiktor Yara Zeno""".split()
CITIES = """Porto Lyon Krakow Tallinn Bergen Valencia Ghent Trieste Leipzig Utrecht Cork Bilbao
Graz Turku Aarhus Brno Split Bologna Malmo Lille Nantes Basel Gdansk Seville Salzburg Riga Vilnius
Bordeaux Dresden Galway Tampere Innsbruck Ljubljana Zagreb Coimbra Lucerne Odense Perugia""".split()
RELATIONS = ["sister", "brother", "cousin", "aunt", "uncle", "best friend", "neighbour", "niece"]
ANIMALS = ["kitten", "puppy", "parrot", "rabbit", "hamster", "tortoise", "ferret", "goldfish"]
PETS = """Biscuit Pickle Waffles Noodle Pepper Mochi Ziggy Clover Sprout Tofu Juniper Nacho
Pretzel Muffin Basil Olive Rocket Domino Peanut Marble""".split()
HOBBIES = """pottery salsa fencing archery calligraphy woodworking beekeeping bouldering sailing
glassblowing origami kayaking knitting juggling fermentation astronomy""".split()
DISHES = """ramen paella moussaka pierogi shakshuka bibimbap risotto gnocchi pho tagine falafel
gumbo goulash ceviche laksa""".split()
FOODS = ["soup", "dinner", "comfort food", "street food", "weekend breakfast"]
ITEMS = """telescope kayak espresso-machine drone synthesizer e-bike projector sewing-machine
turntable tent""".split()
JOBS = """firefighter dentist architect pilot beekeeper sommelier geologist paramedic
translator carpenter""".split()
MONTHS = """January February March April May June July August September October November
December""".split()
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

FILLER = [
    ("The weather was {adj} again today, I stayed in most of the afternoon.", "weather"),
    ("Work was {adj}, we had three meetings about the {thing} project.", "work"),
    ("I cooked something {adj} for lunch but forgot the salt.", "lunch"),
    ("My {rel} called me about nothing in particular, it was {adj}.", "a call"),
    ("I watched a {adj} documentary about {thing} last night.", "a documentary"),
    ("The bus was late this morning, which was {adj}.", "the bus"),
    ("I cleaned the whole flat, it feels {adj} now.", "cleaning"),
    ("I read a few chapters of a {adj} novel about {thing}.", "a novel"),
    ("My phone battery died twice today, so {adj}.", "the phone"),
    ("I went for a walk by the river, the light was {adj}.", "a walk"),
]
ADJECTIVES = """fine odd long quiet lovely boring busy strange calm tiring nice grey""".split()
THINGS = """bridges volcanoes trains coral reefs glaciers spreadsheets robots lighthouses
deserts bees""".split()
REPLIES = [
    "That sounds {adj}. How did it make you feel?",
    "Oh, I see! Tell me more about it.",
    "I'm glad you told me. What happened next?",
    "Hm, {adj} day then. Did you get some rest?",
    "I love hearing about your days. Anything else on your mind?",
    "That makes sense. Was it a {adj} surprise?",
]


@dataclass(frozen=True, slots=True)
class _Plant:
    messages: tuple[str, ...]
    fact: str
    question: str
    category: str


def _plants(rng: random.Random, count: int, user: str) -> list[_Plant]:
    names = rng.sample(NAMES, len(NAMES))
    cities = rng.sample(CITIES, len(CITIES))
    pets = rng.sample(PETS, len(PETS))
    hobbies = rng.sample(HOBBIES, len(HOBBIES))
    dishes = rng.sample(DISHES, len(DISHES))
    items = rng.sample(ITEMS, len(ITEMS))
    jobs = rng.sample(JOBS, len(JOBS))
    plants: list[_Plant] = []
    for i in range(count):
        kind = i % 7
        name, city = names[i % len(names)], cities[i % len(cities)]
        rel = RELATIONS[i % len(RELATIONS)]
        if kind == 0:
            plants.append(
                _Plant(
                    (f"Big news: my {rel} {name} just moved to {city} for a new job.",),
                    f"{user}'s {rel} {name} moved to {city} for a new job.",
                    f"Which city did my {rel} {name} move to?",
                    "single-hop",
                )
            )
        elif kind == 1:
            animal, pet = ANIMALS[i % len(ANIMALS)], pets[i % len(pets)]
            plants.append(
                _Plant(
                    (f"I finally adopted a {animal} and I named it {pet}!",),
                    f"{user} adopted a {animal} named {pet}.",
                    f"What name did I give the {animal} I adopted?",
                    "single-hop",
                )
            )
        elif kind == 2:
            month, day = MONTHS[i % 12], 1 + (i * 7) % 28
            plants.append(
                _Plant(
                    (f"Remind me that {name}'s birthday is on {month} {day}.",),
                    f"{user}'s friend {name} has a birthday on {month} {day}.",
                    f"When is {name}'s birthday?",
                    "temporal",
                )
            )
        elif kind == 3:
            hobby, weekday = hobbies[i % len(hobbies)], WEEKDAYS[i % 7]
            plants.append(
                _Plant(
                    (f"I signed up for {hobby} lessons every {weekday} evening.",),
                    f"{user} takes {hobby} lessons on {weekday} evenings.",
                    f"What lessons did I sign up for on {weekday} evenings?",
                    "single-hop",
                )
            )
        elif kind == 4:
            food, dish = FOODS[i % len(FOODS)], dishes[i % len(dishes)]
            plants.append(
                _Plant(
                    (f"Honestly my favourite {food} is {dish}, I could eat it every day.",),
                    f"{user}'s favourite {food} is {dish}.",
                    f"What is my favourite {food}?",
                    "single-hop",
                )
            )
        elif kind == 5:
            item, price = items[i % len(items)].replace("-", " "), 150 + 25 * i
            plants.append(
                _Plant(
                    (f"I'm saving up for a {item}, it costs {price} dollars.",),
                    f"{user} is saving {price} dollars for a {item}.",
                    f"How much does the {item} I'm saving for cost?",
                    "single-hop",
                )
            )
        else:
            job = jobs[i % len(jobs)]
            plants.append(
                _Plant(
                    (
                        f"I met someone called {name} at the climbing gym today.",
                        f"Guess what, {name} from the gym works as a {job}!",
                    ),
                    f"{user} met {name} at the climbing gym; {name} works as a {job}.",
                    f"What does {name}, whom I met at the climbing gym, do for a living?",
                    "multi-hop",
                )
            )
    return plants


def _near_miss(rng: random.Random, user: str) -> tuple[str, str]:
    """A filler message that shares words with the planted facts but answers none of them."""
    rel, name = rng.choice(RELATIONS), rng.choice(NAMES)
    options = [
        (
            f"My {rel} keeps saying {rng.choice(CITIES)} would be a nice city to visit.",
            f"{user}'s {rel} would like to visit {rng.choice(CITIES)}.",
        ),
        (
            f"The shelter near me has a {rng.choice(ANIMALS)} nobody wants to adopt.",
            f"{user} saw an unadopted animal at a shelter.",
        ),
        (
            f"{name} asked me what I want for my birthday, no idea yet.",
            f"{name} asked {user} about birthday wishes.",
        ),
        (
            f"A friend tried {rng.choice(HOBBIES)} lessons once and quit after a week.",
            f"A friend of {user} quit some lessons.",
        ),
        (
            f"I had {rng.choice(DISHES)} at a cafe, it was not my favourite.",
            f"{user} did not love a cafe meal.",
        ),
        (
            f"My {rel} is saving up for a car, it costs a fortune.",
            f"{user}'s {rel} is saving for a car.",
        ),
        (
            "The climbing gym was packed today, I barely got a wall.",
            f"{user} found the climbing gym crowded.",
        ),
    ]
    return rng.choice(options)


def conversation(
    messages: int,
    facts: int,
    *,
    seed: int = 0,
    conversation_id: str = "synthetic",
    user: str = "Sam",
    assistant: str = "Luna",
    recent: int = 20,
    start: datetime = datetime(2026, 1, 1, 9, 0),
) -> dict[str, Any]:
    """One synthetic conversation of ``messages`` messages with ``facts`` planted facts.

    Messages alternate user / assistant, starting with the user. Facts are
    planted in user messages spread over the conversation except its last
    ``recent`` messages (so the recent buffer alone never answers them); the
    second message of a multi-hop fact comes a third of the conversation later.
    """
    if messages < 4 * max(facts, 1) + recent:
        raise ValueError(f"{messages} messages are too few for {facts} facts")
    rng = random.Random(seed)
    plants = _plants(rng, facts, user)
    usable = messages - recent
    slots: dict[int, tuple[int, int]] = {}  # message index -> (plant, part)
    free_user = list(range(0, usable, 2))
    gap = max(2, (usable // 3) // 2 * 2)
    for p, plant in enumerate(plants):
        for _attempt in range(1000):
            first = rng.choice(free_user)
            at = [first] + [first + gap * k for k in range(1, len(plant.messages))]
            if all(i < usable and i not in slots for i in at):
                for part, i in enumerate(at):
                    slots[i] = (p, part)
                break
        else:
            raise ValueError(f"could not place {facts} facts in {messages} messages")

    out_messages: list[dict[str, Any]] = []
    out_facts: list[dict[str, Any]] = []
    evidence: dict[int, list[str]] = {p: [] for p in range(len(plants))}
    clock = start
    for i in range(messages):
        message_id = f"m{i + 1}"
        clock += timedelta(minutes=rng.randint(1, 90))
        adj = rng.choice(ADJECTIVES)
        if i % 2 == 0:
            if i in slots:
                p, part = slots[i]
                text = plants[p].messages[part]
                evidence[p].append(message_id)
                line = (
                    plants[p].fact
                    if part == len(plants[p].messages) - 1
                    else f"{user} mentioned: {text}"
                )
            elif rng.random() < 0.3:
                text, line = _near_miss(rng, user)
            else:
                template, topic = rng.choice(FILLER)
                text = template.format(adj=adj, thing=rng.choice(THINGS), rel=rng.choice(RELATIONS))
                line = f"{user} talked about {topic}; it was {adj}."
            out_facts.append({"text": line, "evidence": [message_id]})
            role = "user"
        else:
            text = rng.choice(REPLIES).format(adj=adj)
            role = "assistant"
        out_messages.append({"id": message_id, "role": role, "text": text, "at": clock.isoformat()})
    # A multi-hop fact's oracle line credits both of its messages.
    for p, plant in enumerate(plants):
        if len(plant.messages) > 1:
            last = evidence[p][-1]
            for fact in out_facts:
                if fact["evidence"] == [last]:
                    fact["evidence"] = list(evidence[p])
    questions = [
        {"question": plant.question, "evidence": evidence[p], "category": plant.category}
        for p, plant in enumerate(plants)
    ]
    return {
        "id": conversation_id,
        "user": user,
        "assistant": assistant,
        "messages": out_messages,
        "facts": out_facts,
        "questions": questions,
    }


def dataset(conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Conversations wrapped as one file of the operator format."""
    return {"format": "honeychat-recall/1", "conversations": conversations}


__all__ = ["conversation", "dataset"]
