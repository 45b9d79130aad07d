"""End to end: `honeychat chat` as a subprocess, restarted, remembers turn 1 through retrieval."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_env import cli_env

from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.responders import is_summary_request, keeping_user_lines

FACT = "My dog is called Biscuit and he is a golden retriever."
FILLER_TOPICS = [
    "I repaired the bicycle chain this morning",
    "The weather forecast says rain on Thursday",
    "I am reading a novel about submarines",
    "My manager moved the quarterly meeting",
    "I tried a new ramen place downtown",
    "The printer at work jammed again",
    "I started learning the ukulele",
    "We painted the kitchen a pale green",
    "The train was late by twenty minutes",
]


responder = keeping_user_lines("I see.", prefix="The user said: ")


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM.start_in_thread()
    server.responder = responder
    yield server
    server.stop()


def chat(data_dir: Path, llm: FakeLLM, lines: list[str]) -> subprocess.CompletedProcess[str]:
    env = cli_env(data_dir, llm, RETRIEVAL_K="1", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "honeychat.core.cli", "chat", "--user", "tester"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_fact_from_turn_one_comes_back_after_a_restart(tmp_path: Path, llm: FakeLLM) -> None:
    turns = [FACT] + [f"{FILLER_TOPICS[i % len(FILLER_TOPICS)]} (note {i})." for i in range(44)]
    first = chat(tmp_path, llm, turns)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("I see.") == 45
    assert "Traceback" not in first.stderr

    # 45 turns = 90 messages = 4 windows of 20, summarized before the first process exited.
    summaries = [r for r in llm.chat_requests if is_summary_request(r.json)]
    assert len(summaries) == 4

    llm.requests.clear()
    second = chat(tmp_path, llm, ["What kind of dog do I have, and what is his name?"])
    assert second.returncode == 0, second.stderr
    prompt = llm.chat_requests[-1].messages
    system = prompt[0]["content"]
    remembered = system.split("Things you remember", 1)
    assert len(remembered) == 2, "one relevant summary was retrieved"
    assert "Biscuit" in remembered[1], "semantic retrieval brought back turn 1"
    assert not any("Biscuit" in m["content"] for m in prompt[1:]), "not from the recent buffer"


@pytest.mark.slow
def test_no_llm_configured_is_one_clear_sentence(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENROUTER_API_KEY", "LLM_BASE_URL"}}
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "honeychat.core.cli", "chat"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "OPENROUTER_API_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
