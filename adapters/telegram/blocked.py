"""Chats the bot may not write to any more (the user blocked it, or it was removed)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class BlockedChats:
    """A set of chat ids that are skipped without errors, each logged once when added."""

    def __init__(self) -> None:
        self._chats: set[int] = set()

    def __contains__(self, chat_id: object) -> bool:
        return chat_id in self._chats

    def block(self, chat_id: int, reason: str) -> None:
        """Stop answering ``chat_id``; logs the reason the first time only."""
        if chat_id not in self._chats:
            self._chats.add(chat_id)
            log.warning("telegram chat %s is no longer answered: %s", chat_id, reason)

    def unblock(self, chat_id: int) -> None:
        """Answer ``chat_id`` again (the user unblocked the bot or pressed Start)."""
        if chat_id in self._chats:
            self._chats.discard(chat_id)
            log.info("telegram chat %s is answered again", chat_id)
