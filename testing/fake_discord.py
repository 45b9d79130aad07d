"""A fake Discord on loopback: the gateway WebSocket and the REST routes honeychat uses.

It speaks enough of Discord's real wire protocol (API v10, JSON encoding) for
discord.py's own client to log in, identify, receive events, resume after a
dropped connection, answer interactions and sync application commands. Point
discord.py at it with ``DISCORD_API_BASE=fake.api_base`` and
``DISCORD_GATEWAY_URL=fake.gateway_url``.

Every REST request is recorded in :attr:`FakeDiscord.requests`; failures
(429 with ``retry_after`` and ``X-RateLimit-*`` headers, 403 Forbidden) can be
scripted per route, and :meth:`FakeDiscord.drop_connection` kills the gateway
socket the way a network failure would.

Files: :meth:`FakeDiscord.attachment` hosts bytes on the fake's CDN route
(``GET /attachments/<id>/<filename>``) and returns the attachment object for
:meth:`FakeDiscord.send_message`; files the bot uploads (multipart
``payload_json`` + ``files[n]``) land in :attr:`FakeDiscord.uploads`.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
MESSAGE_CONTENT_INTENT = 1 << 15
_snowflakes = itertools.count(1_100_000_000_000_000_000)

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json" (no charset), as Discord sends and discord.py checks.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """A multipart body as ``{"payload_json": ..., "files": [(filename, type, bytes)]}``."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    found: dict[str, Any] = {"files": []}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        if filename is not None:
            found["files"].append((filename, part.get_content_type(), data))
        elif name == "payload_json":
            found["payload_json"] = json.loads(data)
    return found


ALL_PERMISSIONS = (1 << 41) - 1
MANAGE_GUILD = 1 << 5
"""The "Manage Server" permission bit."""
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16)
"""View Channel, Send Messages, Read Message History: an ordinary member."""


def _member(user: dict[str, Any] | None = None, roles: list[str] | None = None) -> dict[str, Any]:
    """A guild member object (``user`` is omitted inside MESSAGE_CREATE)."""
    data: dict[str, Any] = {
        "roles": list(roles or []),
        "joined_at": _now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
    }
    if user is not None:
        data["user"] = user
    return data


def snowflake() -> str:
    """A fresh, increasing Discord id."""
    return str(next(_snowflakes))


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class RecordedRequest:
    """One REST request the fake received."""

    method: str
    path: str
    """Path below the API prefix, e.g. ``/channels/1/messages``."""
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the request arrived."""


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    retry_after: float = 0.0
    is_global: bool = False


@dataclass
class _Session:
    session_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    """Every dispatch of the session, for replay on RESUME."""


class FakeDiscord:
    """A fake Discord API and gateway on 127.0.0.1.

    Use as ``async with FakeDiscord() as fake:``. It knows one guild with a
    text channel and a thread, the bot user and its application; tests add
    users with :meth:`user` and send events with :meth:`send_message` and
    :meth:`send_interaction`.
    """

    def __init__(
        self, *, message_content_allowed: bool = True, everyone_permissions: int = ALL_PERMISSIONS
    ) -> None:
        self.message_content_allowed = message_content_allowed
        self.everyone_permissions = everyone_permissions
        """The @everyone role's permissions (by default every permission)."""
        self.moderator_role_id = snowflake()
        """A role with Manage Server: give it to a member with ``roles=[...]``."""
        self.bot_user = self.user("honeybot", bot=True)
        self.application_id = snowflake()
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.thread_id = snowflake()
        self.other_channel_id = snowflake()
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, dict[str, Any]] = {}
        """Messages created through REST or webhooks, by id, with their latest content."""
        self.commands: list[dict[str, Any]] = []
        """Application commands as last synced."""
        self.identifies = 0
        self.identify_payloads: list[dict[str, Any]] = []
        self.resumes = 0
        self.heartbeats = 0
        self._failures: list[_Failure] = []
        self._forbidden_channels: set[str] = set()
        self._sessions: dict[str, _Session] = {}
        self._seq = 0
        self._ws: web.WebSocketResponse | None = None
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._replay_extra = 0
        self._last_original: str | None = None
        self.port = 0
        self.cdn: dict[str, bytes] = {}
        """Hosted attachment bytes by attachment id."""
        self.cdn_downloads: list[str] = []
        """Attachment ids the bot downloaded."""
        self.cdn_bytes_sent: dict[str, int] = {}
        """Bytes of each attachment written before the download ended (or the client hung up)."""
        self.uploads: list[dict[str, Any]] = []
        """Files the bot sent: ``{"channel_id", "filename", "content_type", "data"}``."""

    # Lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{id}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        """The value for ``DISCORD_API_BASE``."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The value for ``DISCORD_GATEWAY_URL``."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # Building payloads

    @staticmethod
    def user(name: str, *, bot: bool = False, user_id: str | None = None) -> dict[str, Any]:
        """A user object as Discord sends it."""
        data: dict[str, Any] = {
            "id": user_id or snowflake(),
            "username": name,
            "global_name": name.title(),
            "discriminator": "0",
            "avatar": None,
        }
        if bot:
            data["bot"] = True
        return data

    def _guild_payload(self) -> dict[str, Any]:
        def text_channel(channel_id: str, name: str, position: int) -> dict[str, Any]:
            return {
                "id": channel_id,
                "type": 0,
                "guild_id": self.guild_id,
                "name": name,
                "position": position,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }

        return {
            "id": self.guild_id,
            "name": "Honey Guild",
            "icon": None,
            "owner_id": self.bot_user["id"],
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "features": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "joined_at": _now(),
            "roles": [
                {
                    "id": self.guild_id,
                    "name": "@everyone",
                    "permissions": str(self.everyone_permissions),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                },
                {
                    "id": self.moderator_role_id,
                    "name": "moderators",
                    "permissions": str(self.everyone_permissions | MANAGE_GUILD),
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                },
            ],
            "channels": [
                text_channel(self.channel_id, "general", 0),
                text_channel(self.other_channel_id, "random", 1),
            ],
            "threads": [
                {
                    "id": self.thread_id,
                    "type": 11,
                    "guild_id": self.guild_id,
                    "parent_id": self.channel_id,
                    "owner_id": self.bot_user["id"],
                    "name": "a thread",
                    "member_count": 2,
                    "message_count": 0,
                    "rate_limit_per_user": 0,
                    "thread_metadata": {
                        "archived": False,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": _now(),
                        "locked": False,
                    },
                }
            ],
            "members": [_member(self.bot_user)],
        }

    def message_payload(
        self,
        channel_id: str,
        author: dict[str, Any],
        content: str,
        *,
        guild: bool = True,
        mentions: list[dict[str, Any]] | None = None,
        mention_everyone: bool = False,
        referenced: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        message_id: str | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        """A message object as Discord sends it in MESSAGE_CREATE or REST answers."""
        data: dict[str, Any] = {
            "id": message_id or snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": mention_everyone,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 19 if referenced else 0,
            "flags": 0,
            "components": [],
        }
        if guild:
            data["guild_id"] = self.guild_id
            data["member"] = _member(roles=roles)
        if referenced is not None:
            data["message_reference"] = {
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": self.guild_id} if guild else {}),
            }
            data["referenced_message"] = referenced
        return data

    def attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        voice: bool = False,
        duration: float | None = None,
        size: int | None = None,
    ) -> dict[str, Any]:
        """Host ``data`` and return its attachment object (a voice message with ``voice``)."""
        attachment_id = snowflake()
        self.cdn[attachment_id] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        found: dict[str, Any] = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
        }
        if content_type:
            found["content_type"] = content_type
        if voice:
            found["duration_secs"] = 3.0 if duration is None else duration
            found["waveform"] = "AAAA"
        elif duration is not None:
            found["duration_secs"] = duration
        return found

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["id"]
        self.cdn_downloads.append(attachment_id)
        await self._notify()
        if attachment_id not in self.cdn:
            return web.Response(status=404, text="404: Not Found")
        data = self.cdn[attachment_id]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        self.cdn_bytes_sent[attachment_id] = 0
        try:
            for start in range(0, len(data), 65536):
                await response.write(data[start : start + 65536])
                self.cdn_bytes_sent[attachment_id] = start + len(data[start : start + 65536])
        except (ConnectionError, RuntimeError):  # the client hung up: stop sending
            return response
        await response.write_eof()
        return response

    @staticmethod
    def dm_channel_id(user: dict[str, Any]) -> str:
        """The id of the DM channel between the bot and ``user`` (stable per user)."""
        return str(int(user["id"]) + 10**17)  # outside the range of generated ids

    # Events

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send one DISPATCH over the gateway (kept for replay if the socket is down)."""
        if self._session is None:
            raise RuntimeError("no gateway session: the client has not identified")
        self._seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": self._seq, "d": data}
        self._session.events.append(frame)
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps(frame))

    async def send_message(
        self,
        author: dict[str, Any],
        content: str,
        *,
        channel_id: str | None = None,
        dm: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE for a user's message; returns the message payload."""
        if dm:
            channel_id = channel_id or self.dm_channel_id(author)
        payload = self.message_payload(
            channel_id or self.channel_id, author, content, guild=not dm, **kwargs
        )
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    async def send_interaction(
        self,
        author: dict[str, Any],
        *,
        command: str | None = None,
        options: dict[str, str] | None = None,
        custom_id: str | None = None,
        values: list[str] | None = None,
        message: dict[str, Any] | None = None,
        dm: bool = False,
        channel_id: str | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE: a slash ``command`` or a component click (``custom_id``).

        ``roles``: the member's roles; its resolved ``permissions`` follow from them."""
        channel_id = channel_id or (self.dm_channel_id(author) if dm else self.channel_id)
        data: dict[str, Any] = {
            "id": snowflake(),
            "application_id": self.application_id,
            "token": "itoken-" + snowflake(),
            "version": 1,
            "channel_id": channel_id,
            "app_permissions": str((1 << 41) - 1),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
            "authorizing_integration_owners": {"0": self.guild_id}
            if not dm
            else {"1": author["id"]},
            "context": 1 if dm else 0,
        }
        if dm:
            data["user"] = author
            data["channel"] = {"id": channel_id, "type": 1, "recipients": [author]}
        else:
            data["guild_id"] = self.guild_id
            data["guild_locale"] = "en-US"
            data["channel"] = {
                "id": channel_id,
                "type": 0,
                "guild_id": self.guild_id,
                "name": "general",
            }
            permissions = self.everyone_permissions
            if self.moderator_role_id in (roles or []):
                permissions |= MANAGE_GUILD
            data["member"] = {**_member(author, roles), "permissions": str(permissions)}
        if command is not None:
            data["type"] = 2
            synced = next((c for c in self.commands if c["name"] == command), None)
            data["data"] = {
                "id": synced["id"] if synced else snowflake(),
                "name": command,
                "type": 1,
                "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()],
            }
        else:
            data["type"] = 3
            data["data"] = {"custom_id": custom_id, "component_type": 3 if values else 2}
            if values:
                data["data"]["values"] = values
            data["message"] = message
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    async def drop_connection(self, *, replay_delivered: int = 0) -> None:
        """Kill the gateway socket like a network failure (close code 4000, resumable).

        ``replay_delivered`` makes the next RESUME replay that many events the
        client had already received, as Discord may after an unclean drop.
        """
        self._replay_extra = replay_delivered
        self._ready.clear()
        if self._ws is not None:
            await self._ws.close(code=4000, message=b"dropped")

    def forget_sessions(self) -> None:
        """Make every existing session unresumable (the next RESUME gets INVALID_SESSION)."""
        self._sessions.clear()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until a client has identified (or resumed) and is receiving events."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # Scripted failures

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and the regex fail with ``status``."""
        self._failures.append(
            _Failure(
                method.upper(), re.compile(path_pattern), status, times, retry_after, is_global
            )
        )

    def forbid_channel(self, channel_id: str) -> None:
        """Answer every write to a channel with 403 Missing Permissions."""
        self._forbidden_channels.add(channel_id)

    # Inspecting what the client did

    def requests_matching(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path matches the regex (full match)."""
        pattern = re.compile(path_pattern)
        return [
            r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)
        ]

    def interaction_response(self, interaction_id: str) -> dict[str, Any] | None:
        """The message an interaction's callback created, if any."""
        return next(
            (m for m in self.messages.values() if m.get("interaction_callback") == interaction_id),
            None,
        )

    def texts_in(self, channel_id: str) -> list[str]:
        """Current text of every message the bot posted in a channel (not interaction replies)."""
        return [
            m["content"]
            for m in self.messages.values()
            if m["channel_id"] == channel_id and "webhook_id" not in m
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every request or event); return it."""

        async def _wait() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(_wait(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # The gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": OP_HELLO, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op = frame.get("op")
            if op == OP_HEARTBEAT:
                self.heartbeats += 1
                await ws.send_str(json.dumps({"op": OP_HEARTBEAT_ACK}))
            elif op == OP_IDENTIFY:
                await self._identify(ws, frame["d"])
            elif op == OP_RESUME:
                await self._resume(ws, frame["d"])
        if self._ws is ws:
            self._ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.identifies += 1
        self.identify_payloads.append(data)
        if data.get("intents", 0) & MESSAGE_CONTENT_INTENT and not self.message_content_allowed:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(session_id=snowflake())
        self._sessions[session.session_id] = session
        self._session = session
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": self.guild_id, "unavailable": True}],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": data.get("shard", [0, 1]),
            "application": {"id": self.application_id, "flags": 1 << 19},
            "private_channels": [],
        }
        await self.dispatch("READY", ready)
        await self.dispatch("GUILD_CREATE", self._guild_payload())
        self._ready.set()
        await self._notify()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        if session is None:
            await ws.send_str(json.dumps({"op": OP_INVALID_SESSION, "d": False}))
            return
        self.resumes += 1
        self._session = session
        last_seen = int(data.get("seq") or 0)
        missed = [e for e in session.events if e["s"] > last_seen]
        delivered = [e for e in session.events if e["s"] <= last_seen and e["t"] != "READY"]
        replay = delivered[len(delivered) - self._replay_extra :] if self._replay_extra else []
        self._replay_extra = 0
        for frame in replay + missed:
            await ws.send_str(json.dumps(frame))
        await self.dispatch("RESUMED", {})
        self._ready.set()
        await self._notify()

    # REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = json.loads(raw)
            elif request.content_type.startswith("multipart/"):
                body = _multipart(raw, request.headers["Content-Type"])
        record = RecordedRequest(
            request.method, path, dict(request.query), body, dict(request.headers)
        )
        self.requests.append(record)
        try:
            response = self._scripted_failure(record) or await self._route(record)
        finally:
            await self._notify()
        record.status = response.status
        return response

    def _scripted_failure(self, record: RecordedRequest) -> web.Response | None:
        channel = re.match(r"/channels/(\d+)/", record.path)
        if channel and channel.group(1) in self._forbidden_channels and record.method != "GET":
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        for failure in self._failures:
            if (
                failure.times > 0
                and failure.method == record.method
                and failure.pattern.fullmatch(record.path)
            ):
                failure.times -= 1
                if failure.status == 429:
                    headers = {
                        "Via": "1.1 google",
                        "Retry-After": str(max(1, round(failure.retry_after))),
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": str(failure.retry_after),
                        "X-RateLimit-Bucket": "fakebucket",
                        "X-RateLimit-Scope": "global" if failure.is_global else "user",
                    }
                    if failure.is_global:
                        headers["X-RateLimit-Global"] = "true"
                    body = {
                        "message": "You are being rate limited.",
                        "retry_after": failure.retry_after,
                        "global": failure.is_global,
                    }
                    return _json(body, status=429, headers=headers)
                return _json({"message": "scripted failure", "code": 0}, status=failure.status)
        return None

    async def _route(self, r: RecordedRequest) -> web.Response:
        p, m = r.path, r.method
        ok_headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset-After": "1.0",
            "X-RateLimit-Bucket": "fakebucket",
        }
        if m == "GET" and p == "/users/@me":
            return _json(self.bot_user)
        if m == "POST" and p == "/users/@me/channels":
            recipient = self.user("recipient", user_id=str(r.json["recipient_id"]))
            return _json(
                {"id": self.dm_channel_id(recipient), "type": 1, "recipients": [recipient]}
            )
        if m == "GET" and p == "/oauth2/applications/@me":
            return _json(self._application())
        if m == "GET" and p in ("/gateway", "/gateway/bot"):
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if m == "PUT" and (match := re.fullmatch(r"/applications/(\d+)(/guilds/\d+)?/commands", p)):
            self.commands = [
                {**cmd, "id": snowflake(), "application_id": match.group(1), "version": snowflake()}
                for cmd in r.json
            ]
            return _json(self.commands)
        if m == "POST" and (match := re.fullmatch(r"/channels/(\d+)/typing", p)):
            return web.Response(status=204)
        if m == "POST" and (match := re.fullmatch(r"/channels/(\d+)/messages", p)):
            body = r.json
            if isinstance(body, dict) and "files" in body:  # multipart: payload_json + files[n]
                for name, content_type, data in body["files"]:
                    self.uploads.append(
                        {
                            "channel_id": match.group(1),
                            "filename": name,
                            "content_type": content_type,
                            "data": data,
                        }
                    )
                body = body.get("payload_json") or {}
            return _json(self._store_message(match.group(1), body), headers=ok_headers)
        if m == "PATCH" and (match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", p)):
            return self._edit_message(match.group(2), r.json, ok_headers)
        if m == "POST" and (match := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", p)):
            return _json(self._interaction_callback(match.group(1), r.json))
        if m == "POST" and (match := re.fullmatch(r"/webhooks/(\d+)/([^/]+)", p)):
            return _json(self._store_message(self.channel_id, r.json, webhook=True))
        if m == "PATCH" and (match := re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/([^/]+)", p)):
            return self._edit_message(match.group(3), r.json, ok_headers)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _application(self) -> dict[str, Any]:
        return {
            "id": self.application_id,
            "name": "honeybot",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user("owner"),
            "verify_key": "0" * 64,
            "flags": 1 << 19,
            "summary": "",
            "team": None,
        }

    def _store_message(
        self, channel_id: str, body: dict[str, Any], *, webhook: bool = False
    ) -> dict[str, Any]:
        message = self.message_payload(
            channel_id, self.bot_user, body.get("content") or "", guild=True
        )
        message["components"] = body.get("components") or []
        message["flags"] = body.get("flags") or 0
        if webhook:
            message["webhook_id"] = self.application_id
        self.messages[message["id"]] = message
        return message

    def _edit_message(
        self, message_id: str, body: dict[str, Any], headers: dict[str, str]
    ) -> web.Response:
        if message_id == "@original":
            message_id = self._last_original or ""
        message = self.messages.get(message_id)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if "content" in body:
            message["content"] = body["content"]
        if "components" in body:
            message["components"] = body["components"] or []
        message["edited_timestamp"] = _now()
        return _json(message, headers=headers)

    def _interaction_callback(self, interaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data") or {}
        result: dict[str, Any] = {"interaction": {"id": interaction_id, "type": 2}}
        if body.get("type") == 4:
            message = self._store_message(self.channel_id, data, webhook=True)
            message["interaction_callback"] = interaction_id
            self._last_original = message["id"]
            result["interaction"]["response_message_id"] = message["id"]
            result["interaction"]["response_message_ephemeral"] = bool(
                (data.get("flags") or 0) & 64
            )
            result["resource"] = {"type": body["type"], "message": message}
        elif body.get("type") == 5:
            message = self._store_message(self.channel_id, {"content": ""}, webhook=True)
            self._last_original = message["id"]
            result["interaction"]["response_message_loading"] = True
        return result
