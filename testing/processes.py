"""``honeychat`` commands as real subprocesses, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import sys


async def start_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``honeychat ARGS...`` with this interpreter and ``env``, its output discarded."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "honeychat.core.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
