"""Example plugin ``sqlite_memory``: long-term memory in SQLite instead of Chroma.

It answers ``honeychat_cold_store`` with a :class:`SQLiteColdStore`, which
implements :class:`honeychat.core.memory.stores.ColdStore`. The built-in
memory plugin answers that hook at ``trylast``, so this store wins and
everything else (the hot buffer, summarization, retrieval, ``/memory``,
``/forget``) keeps working on top of it. Search ranks summaries by the words
they share with the query: simple, dependency-free, and good enough to show
the contract.

Copy this file into your ``PLUGINS_DIR`` to use it; configure the file with
``PLUGIN_CONFIG='{"sqlite_memory": {"path": "/var/lib/honeychat/summaries.db"}}'``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from honeychat import hookimpl
from honeychat.core.types import Summary

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

NAME = "sqlite_memory"
_WORD = re.compile(r"\w+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    doc_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    text TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_at TEXT,
    last_at TEXT,
    model TEXT NOT NULL DEFAULT ''
)
"""


class Config(BaseModel):
    """Where the database lives (default: ``summaries.sqlite3`` in the data directory)."""

    path: Path | None = None


config_model = Config


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SQLiteColdStore:
    """A :class:`~honeychat.core.memory.stores.ColdStore` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(_SCHEMA)
        self._lock = asyncio.Lock()

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:  # one statement at a time on the shared connection
            return await asyncio.to_thread(self._execute, sql, params)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._db:
            return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _summary(row: tuple[Any, ...], score: float | None = None) -> Summary:
        conversation_id, text, first_seq, last_seq, first_at, last_at, model = row
        return Summary(
            conversation_id,
            text,
            first_seq,
            last_seq,
            datetime.fromisoformat(first_at) if first_at else None,
            datetime.fromisoformat(last_at) if last_at else None,
            model,
            score,
        )

    _COLUMNS = "conversation_id, text, first_seq, last_seq, first_at, last_at, model"

    async def add(self, summary: Summary) -> None:
        await self._run(
            "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                summary.doc_id,
                summary.conversation_id,
                summary.text,
                summary.first_seq,
                summary.last_seq,
                _time(summary.first_at),
                _time(summary.last_at),
                summary.model,
            ),
        )

    async def latest(self, conversation_id: str) -> Summary | None:
        rows = await self._run(
            f"SELECT {self._COLUMNS} FROM summaries WHERE conversation_id = ? "
            "ORDER BY last_seq DESC LIMIT 1",
            (conversation_id,),
        )
        return self._summary(rows[0]) if rows else None

    async def search(self, conversation_id: str, query: str, k: int) -> list[Summary]:
        wanted = _words(query)
        scored = []
        for summary in await self.all(conversation_id):
            words = _words(summary.text)
            overlap = len(wanted & words) / (len(wanted | words) or 1)
            scored.append((overlap, summary))
        scored.sort(key=lambda pair: (-pair[0], -pair[1].last_seq))
        return [dataclasses.replace(summary, score=score) for score, summary in scored[:k]]

    async def all(self, conversation_id: str) -> list[Summary]:
        rows = await self._run(
            f"SELECT {self._COLUMNS} FROM summaries WHERE conversation_id = ? ORDER BY first_seq",
            (conversation_id,),
        )
        return [self._summary(row) for row in rows]

    async def delete(self, conversation_id: str, doc_ids: list[str] | None = None) -> None:
        if doc_ids is None:
            await self._run("DELETE FROM summaries WHERE conversation_id = ?", (conversation_id,))
            return
        for doc_id in doc_ids:
            await self._run(
                "DELETE FROM summaries WHERE conversation_id = ? AND doc_id = ?",
                (conversation_id, doc_id),
            )

    async def close(self) -> None:
        async with self._lock:
            self._db.close()


@hookimpl
def honeychat_cold_store(bot: Bot) -> SQLiteColdStore:
    """Replace the Chroma store: the built-in one answers at ``trylast``, so this one wins."""
    config: Config = bot.plugins.config(NAME)
    return SQLiteColdStore(config.path or bot.settings.data_dir / "summaries.sqlite3")
