"""Slack event payloads to :class:`IncomingMessage`: what to ignore, who wrote it, what it says."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from honeychat.core.types import Attachment, IncomingMessage

PLATFORM = "slack"

_ANSWERED_SUBTYPES = frozenset({"file_share", "thread_broadcast", "me_message"})
"""Message subtypes written by a person; every other subtype (bot_message,
message_changed, message_deleted, channel_join...) is ignored."""

_CONTROL = re.compile(r"<([^<>]+)>")


def user_key(team_id: str, user_id: str) -> str:
    """A user's identity across the platform: ``T123:U456`` (Slack user ids are per workspace)."""
    return f"{team_id}:{user_id}"


def space_key(team_id: str, channel: str) -> str:
    """A channel's space id: ``T123:C456`` (the workspace the app serves, then the channel)."""
    return f"{team_id}:{channel}"


def team_of(event: dict[str, Any], body: dict[str, Any]) -> str:
    """The workspace of the event's author (their home team in Slack Connect channels)."""
    return str(event.get("user_team") or event.get("team") or body.get("team_id") or "")


def is_person_message(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """Whether a message or app_mention event was written by a person (not a bot, not an edit)."""
    subtype = event.get("subtype")
    if subtype is not None and subtype not in _ANSWERED_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def is_direct_channel(channel: str, channel_type: str | None = None) -> bool:
    """Whether a channel is a DM with the bot (``im``; DM ids start with ``D``)."""
    return channel_type == "im" or channel.startswith("D")


def plain_text(text: str, bot_user_id: str | None) -> str:
    """Slack's wire text to what the person typed: mentions of the bot removed,
    other control sequences made readable, ``&amp;``-style escapes undone."""

    def readable(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target in (f"@{bot_user_id}",):
            return ""
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return f"{label} ({target})" if label and label != target else target

    text = _CONTROL.sub(readable, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def attachments_of(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """Metadata of the files shared with a message (never downloaded)."""
    found: list[Attachment] = []
    for file in event.get("files") or []:
        if not isinstance(file, dict):
            continue
        mime = str(file.get("mimetype") or "") or None
        found.append(
            Attachment(
                kind=_kind(mime),
                name=file.get("name"),
                mime_type=mime,
                size=file.get("size"),
                url=file.get("url_private"),
            )
        )
    return tuple(found)


def _kind(mime: str | None) -> str:
    major = (mime or "").split("/")[0]
    return {"image": "photo", "audio": "voice", "video": "video"}.get(major, "file")


def incoming_message(
    event: dict[str, Any], body: dict[str, Any], bot_user_id: str | None, *, mentioned: bool
) -> IncomingMessage:
    """Build the core's message from a person's ``message`` or ``app_mention`` event."""
    channel = str(event.get("channel", ""))
    ts = str(event.get("ts", ""))
    try:
        sent_at = datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        sent_at = datetime.now(UTC)
    is_direct = is_direct_channel(channel, event.get("channel_type"))
    team = str(body.get("team_id") or team_of(event, body))
    return IncomingMessage(
        platform=PLATFORM,
        user_id=user_key(team_of(event, body), str(event.get("user", ""))),
        chat_id=channel,
        text=plain_text(str(event.get("text") or ""), bot_user_id),
        message_id=ts or None,
        is_direct=is_direct,
        space_id=None if is_direct else space_key(team, channel),
        thread_id=None if is_direct else event.get("thread_ts"),
        mentions_bot=mentioned,
        replies_to_bot=bool(event.get("parent_user_id"))
        and event.get("parent_user_id") == bot_user_id,
        attachments=attachments_of(event),
        sent_at=sent_at,
    )
