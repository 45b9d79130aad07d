"""Who a Slack user is: display name and workspace admin status, from ``users.info``.

Message events carry only user ids; the space's memory attributes messages
by display name, and ``/character`` in a channel needs to know whether the
sender administers the workspace (``is_admin`` or ``is_owner``). Answers are
cached for a minute per user.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
_CACHE_SIZE = 5_000


class SlackMembers:
    """Cached ``users.info`` look-ups for one workspace client."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._cache: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()

    async def info(self, user_id: str) -> dict[str, Any] | None:
        """The ``user`` object, or ``None`` when Slack cannot say (logged)."""
        cached = self._cache.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        user: dict[str, Any] | None
        try:
            response = await self.client.users_info(user=user_id)
            user = response.get("user")
        except Exception as exc:
            log.warning("slack: users.info for %s failed: %s", user_id, exc)
            return None
        self._cache[user_id] = (time.monotonic(), user)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return user

    async def display_name(self, user_id: str) -> str | None:
        user = await self.info(user_id)
        if not user:
            return None
        profile = user.get("profile") or {}
        return (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
        )

    async def is_admin(self, user_id: str) -> bool:
        """Whether the user is a workspace admin or owner."""
        user = await self.info(user_id)
        return bool(user and (user.get("is_admin") or user.get("is_owner")))
