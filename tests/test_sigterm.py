"""SIGTERM stops ``honeychat serve`` and ``honeychat run`` cleanly: real subprocesses.

The embedded valkey server must be gone afterwards, an in-flight turn is
answered before the process exits, and exit stays within the shutdown bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from chroma_server import free_port

from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.testing.fake_llm import FakeLLM
from honeychat.testing.fake_telegram import FakeTelegram

SHUTDOWN = 8.0


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CHROMA_"))}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "SHUTDOWN_TIMEOUT": str(SHUTDOWN),
            "OPENROUTER_API_KEY": "",
            "LLM_BASE_URL": "",
            **extra,
        }
    )
    return env


async def start(args: list[str], env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "honeychat.core.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_for(condition: object, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def stop_and_check(process: asyncio.subprocess.Process, data_dir: Path) -> None:
    valkey = EmbeddedRedis(data_dir).pid
    assert valkey is not None, "the embedded valkey server did not start"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), SHUTDOWN + 10)
    took = time.monotonic() - started
    assert process.stderr is not None
    err = (await process.stderr.read()).decode(errors="replace")
    assert code == 0, err
    assert took < SHUTDOWN + 3, took
    assert EmbeddedRedis(data_dir).pid is None, "the embedded valkey server is still running"


def fake_embeddings(llm: FakeLLM) -> dict[str, str]:
    """Embeddings from the fake LLM: no model to load, so the process starts fast."""
    return {
        "EMBEDDING_BACKEND": "openai",
        "EMBEDDING_BASE_URL": llm.base_url,
        "EMBEDDING_API_KEY": "test-key",
    }


async def test_sigterm_stops_serve_and_its_embedded_valkey(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    async with FakeLLM() as llm:
        env = environment(data_dir, **fake_embeddings(llm))
        process = await start(["serve", "--port", str(port)], env, tmp_path)
        await serve_until_healthy_then_stop(process, port, data_dir)


async def healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def serve_until_healthy_then_stop(
    process: asyncio.subprocess.Process, port: int, data_dir: Path
) -> None:
    await wait_for(lambda: healthy(port), 60)
    await stop_and_check(process, data_dir)


async def test_sigterm_during_a_turn_answers_it_then_stops_run_and_its_ops_port(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with FakeTelegram() as tg, FakeLLM() as llm:
        llm.delay = 1.5
        llm.script(["answered before stopping"])
        env = environment(
            data_dir,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_BASE=tg.base_url,
            ADAPTERS="telegram",
            LLM_BASE_URL=llm.base_url,
            LLM_API_KEY="test-key",
            **fake_embeddings(llm),
        )
        port = free_port()  # with the ops endpoints: they stop with the adapters
        process = await start(["run", "--ops-port", str(port)], env, tmp_path)
        await wait_for(lambda: healthy(port), 60)
        tg.push_update({"message": tg.message("hello, are you there?")})

        async def llm_called() -> bool:
            return bool(llm.chat_requests)

        await wait_for(llm_called, 60)
        await stop_and_check(process, data_dir)
        assert tg.chat(42).texts == ["answered before stopping"]
