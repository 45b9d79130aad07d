"""The ``/honeychat`` slash command and the choice menu: payloads to core command calls."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from honeychat.adapters.slack.events import PLATFORM, is_direct_channel, space_key, user_key
from honeychat.core.types import IncomingMessage

SLASH_COMMAND = "/honeychat"
HELP_COMMAND = "help"


def parse_subcommand(text: str) -> tuple[str, str]:
    """``"character luna"`` -> ``("character", "luna")``; empty text means ``help``.

    A leading ``/`` is tolerated (``/honeychat /forget``).
    """
    name, _, args = text.strip().partition(" ")
    name = name.lstrip("/").lower()
    return (name or HELP_COMMAND), args.strip()


def slash_names(text: str, names: Iterable[str]) -> str:
    """Rewrite the core's ``/forget`` mentions as Slack's ``/honeychat forget``.

    Slack has one slash command with subcommands, so a ``/help`` in the core's
    text would point at Slack's own ``/help``.
    """
    known = sorted(names, key=len, reverse=True)
    if not known:
        return text
    pattern = re.compile(r"(?<![\w/])/(" + "|".join(map(re.escape, known)) + r")\b")
    return pattern.sub(lambda m: f"{SLASH_COMMAND} {m.group(1)}", text)


def usage(commands: Mapping[str, Any]) -> str:
    """A Markdown list of the subcommands, for unknown names."""
    lines = [f"Usage: `{SLASH_COMMAND} <command>`"]
    for name in sorted(commands):
        description = getattr(commands[name], "description", "")
        lines.append(f"- `{SLASH_COMMAND} {name}`: {description}".rstrip(": "))
    return "\n".join(lines)


def command_message(payload: Mapping[str, Any]) -> IncomingMessage:
    """The core's view of a slash command invocation (``/honeychat character luna``)."""
    channel = str(payload.get("channel_id", ""))
    return IncomingMessage(
        platform=PLATFORM,
        user_id=user_key(str(payload.get("team_id", "")), str(payload.get("user_id", ""))),
        chat_id=channel,
        text=f"{payload.get('command', SLASH_COMMAND)} {payload.get('text', '')}".strip(),
        user_name=payload.get("user_name"),
        is_direct=is_direct_channel(
            channel, "im" if payload.get("channel_name") == "directmessage" else None
        ),
        space_id=space_key(str(payload.get("team_id", "")), channel),
    )


def action_message(body: Mapping[str, Any]) -> IncomingMessage:
    """The core's view of a block action (a choice picked from the select menu)."""
    user = body.get("user") or {}
    team = user.get("team_id") or (body.get("team") or {}).get("id") or ""
    channel = str(
        (body.get("channel") or {}).get("id")
        or (body.get("container") or {}).get("channel_id")
        or ""
    )
    return IncomingMessage(
        platform=PLATFORM,
        user_id=user_key(str(team), str(user.get("id", ""))),
        chat_id=channel,
        text="",
        user_name=user.get("username") or user.get("name"),
        is_direct=is_direct_channel(channel),
        space_id=space_key(str((body.get("team") or {}).get("id") or team), channel),
    )


def selected_value(body: Mapping[str, Any], action_id: str) -> str | None:
    """The value of the option picked in our select menu, if this action is one."""
    for action in body.get("actions") or []:
        if action.get("action_id") == action_id:
            option = action.get("selected_option") or {}
            value = option.get("value")
            return str(value) if value else None
    return None
