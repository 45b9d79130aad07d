"""A fake Slack on loopback: the Web API, response URLs and a Socket Mode WebSocket.

Tests point slack-sdk's real ``AsyncWebClient`` at :attr:`FakeSlack.base_url`
and slack-bolt's real app at it; the fake speaks the same wire protocol as
slack.com (JSON or form bodies in, ``{"ok": ...}`` JSON out, ``429`` with
``Retry-After``) and records every call so tests can assert on what the bot
sent. Nothing here is mocked inside the process under test.

Usage::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        ...
        posts = slack.calls_to("chat.postMessage")

Files: :meth:`FakeSlack.add_file` hosts bytes behind a ``url_private`` that,
like Slack's, answers only with a bearer token (otherwise a login page in
HTML), and returns the file object for an event's ``files``. Uploads through
``files_upload_v2`` (``files.getUploadURLExternal``, ``POST`` to the upload
URL, ``files.completeUploadExternal``) land in :attr:`FakeSlack.uploads`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier


@dataclass(slots=True)
class ApiCall:
    """One Web API call the fake received."""

    method: str
    args: dict[str, Any]
    token: str | None


@dataclass(slots=True)
class _Failure:
    status: int
    error: str
    retry_after: int | None
    times: int


@dataclass(slots=True)
class SlackMessage:
    """A message as the fake workspace currently shows it (after updates)."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)


def sign_request(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds to a request it sends to an app: timestamp and v0 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


class FakeSlack:
    """A loopback Slack Web API with a Socket Mode server, recording what it receives."""

    def __init__(
        self, *, team_id: str = "T123", bot_user_id: str = "UBOT", bot_id: str = "BBOT"
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: list[ApiCall] = []
        self.messages: dict[str, SlackMessage] = {}
        """Messages by ``ts``, with the text of their latest update."""
        self.responses: list[dict[str, Any]] = []
        """Bodies posted to response URLs (slash commands and block actions)."""
        self.acks: list[dict[str, Any]] = []
        """Socket Mode envelope acknowledgements from the app."""
        self._failures: dict[str, list[_Failure]] = {}
        self._ts = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.files: dict[str, bytes] = {}
        """Hosted file bytes by file id (see :meth:`add_file`)."""
        self.file_downloads: list[tuple[str, str | None]] = []
        """``(file_id, token)`` of every download of a hosted file."""
        self.uploads: list[dict[str, Any]] = []
        """Completed uploads: ``{"id", "filename", "data", "channel_id", "thread_ts", "title"}``."""
        self._pending_uploads: dict[str, dict[str, Any]] = {}
        self._file_ids = itertools.count(1)
        self.users: dict[str, dict[str, Any]] = {}
        """Workspace members by user id, as ``users.info`` answers: add them with
        :meth:`add_user` (an unknown id gets ``user_not_found``)."""

    def add_user(
        self, user_id: str, display_name: str, *, is_admin: bool = False, is_owner: bool = False
    ) -> dict[str, Any]:
        """Add a workspace member (a ``user`` object as ``users.info`` returns it)."""
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": display_name.lower().replace(" ", "."),
            "deleted": False,
            "real_name": display_name,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": is_owner,
            "is_bot": False,
            "profile": {"display_name": display_name, "real_name": display_name},
        }
        self.users[user_id] = user
        return user

    # Lifecycle

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # read methods accept GET + query string
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files-pri/{file_id}/{name}", self._file)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close open WebSockets and stop listening."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The Web API base URL, as ``SLACK_API_URL`` / ``AsyncWebClient(base_url=...)`` take it."""
        return f"http://127.0.0.1:{self.port}/api/"

    def http_mode_config(self, signing_secret: str) -> dict[str, Any]:
        """A ``PLUGIN_CONFIG`` whose ``slack`` section serves the Events API on a free
        loopback port, verified with ``signing_secret``, talking to this fake."""
        return {
            "slack": {
                "slack_bot_token": "xoxb-test",
                "slack_signing_secret": signing_secret,
                "slack_api_url": self.base_url.rstrip("/"),
                "slack_host": "127.0.0.1",
                "slack_port": 0,
            }
        }

    def response_url(self, name: str = "r1") -> str:
        """A response URL to put in a slash command or block action payload."""
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # Scripting and inspection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        error: str = "ratelimited",
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``status=429`` answers like Slack's rate limiter (with ``Retry-After``
        seconds); ``status=200`` answers ``{"ok": false, "error": error}``.
        """
        self._failures.setdefault(method, []).append(
            _Failure(status=status, error=error, retry_after=retry_after, times=times)
        )

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every recorded call of ``method``, oldest first."""
        return [call.args for call in self.calls if call.method == method]

    def bot_messages(self, channel: str | None = None) -> list[SlackMessage]:
        """Messages the bot posted (current text), oldest first."""
        found = [m for m in self.messages.values() if channel is None or m.channel == channel]
        return sorted(found, key=lambda m: float(m.ts))

    async def wait_until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``condition()`` holds after some recorded call; TimeoutError otherwise."""

        async def poll() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(poll(), within)

    def add_file(
        self, data: bytes, name: str, mimetype: str | None, *, size: int | None = None
    ) -> dict[str, Any]:
        """Host ``data``; returns the file object a ``file_share`` message event lists."""
        file_id = f"F{next(self._file_ids):08d}"
        self.files[file_id] = data
        url = f"http://127.0.0.1:{self.port}/files-pri/{self.team_id}-{file_id}/{name}"
        found: dict[str, Any] = {
            "id": file_id,
            "name": name,
            "title": name,
            "size": len(data) if size is None else size,
            "url_private": url,
            "url_private_download": url + "?download=1",
        }
        if mimetype:
            found["mimetype"] = mimetype
        return found

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"].split("-", 1)[-1]
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.file_downloads.append((file_id, token))
        self._record()
        if not token:  # Slack answers a private URL without a token with its login page
            return web.Response(
                text="<!DOCTYPE html><html>Sign in</html>", content_type="text/html"
            )
        if file_id not in self.files:
            return web.Response(status=404, text="Not found")
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _upload(self, request: web.Request) -> web.Response:
        pending = self._pending_uploads.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="unknown upload")
        pending["data"] = await request.read()
        return web.Response(text=f"OK - {len(pending['data'])}")

    def _record(self) -> None:
        self._changed.set()

    # Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else args.get("token")
        self.calls.append(ApiCall(method=method, args=args, token=token))
        try:
            failure = self._take_failure(method)
            if failure is not None:
                if failure.status == 429:
                    headers = {}
                    if failure.retry_after is not None:
                        headers["Retry-After"] = str(failure.retry_after)
                    return web.json_response(
                        {"ok": False, "error": failure.error}, status=429, headers=headers
                    )
                return web.json_response(
                    {"ok": False, "error": failure.error}, status=failure.status
                )
            if not token:
                return web.json_response({"ok": False, "error": "not_authed"})
            return web.json_response(self._answer(method, args))
        finally:
            self._record()

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Fake Team",
                "user": "honeychat",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            ts = self._next_ts()
            message = SlackMessage(
                channel=channel,
                ts=ts,
                text=str(args.get("text", "")),
                thread_ts=args.get("thread_ts"),
                blocks=_blocks(args),
            )
            self.messages[ts] = message
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": message.text, "ts": ts, "bot_id": self.bot_id},
            }
        if method == "chat.update":
            ts = str(args.get("ts", ""))
            existing = self.messages.get(ts)
            if existing is None or existing.channel != args.get("channel"):
                return {"ok": False, "error": "message_not_found"}
            existing.text = str(args.get("text", ""))
            existing.blocks = _blocks(args)
            return {"ok": True, "channel": existing.channel, "ts": ts, "text": existing.text}
        if method == "chat.postEphemeral":
            if not args.get("channel") or not args.get("user"):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "message_ts": self._next_ts()}
        if method in ("views.open", "views.publish"):
            return {"ok": True, "view": {"id": "V1", **(args.get("view") or {})}}
        if method == "files.getUploadURLExternal":
            if not args.get("filename") or not str(args.get("length", "")).isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._file_ids):08d}"
            self._pending_uploads[file_id] = {"id": file_id, "filename": args["filename"]}
            return {
                "ok": True,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id,
            }
        if method == "files.completeUploadExternal":
            files = json.loads(str(args.get("files") or "[]"))
            done = []
            for entry in files:
                pending = self._pending_uploads.pop(str(entry.get("id")), None)
                if pending is None or "data" not in pending:
                    return {"ok": False, "error": "file_not_found"}
                upload = {
                    **pending,
                    "title": entry.get("title"),
                    "channel_id": args.get("channel_id"),
                    "thread_ts": args.get("thread_ts"),
                }
                self.uploads.append(upload)
                done.append(
                    {"id": upload["id"], "name": upload["filename"], "title": upload["title"]}
                )
            return {"ok": True, "files": done}
        if method == "users.info":
            user = self.users.get(str(args.get("user", "")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": user}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": False, "error": "unknown_method"}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append({"name": request.match_info["name"], **body})
        self._record()
        return web.Response(text="ok")

    # Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._record()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A123"},
            }
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.acks.append(data)
                        self._record()
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        """Whether a Socket Mode client is connected."""
        return bool(self._sockets)

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0
    ) -> str:
        """Deliver a Socket Mode envelope (``events_api``, ``slash_commands``, ``interactive``)."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected")
        envelope_id = f"env-{next(self._envelopes)}"
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "" if not retry_attempt else "timeout",
            }
        )
        return envelope_id


async def _read_args(request: web.Request) -> dict[str, Any]:
    raw = await request.text()
    if request.content_type == "application/json":
        data = json.loads(raw) if raw else {}
        return dict(data) if isinstance(data, dict) else {}
    args: dict[str, Any] = dict(parse_qsl(raw, keep_blank_values=True))
    args.update(request.query)
    return args


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return []
    return list(blocks) if isinstance(blocks, list) else []


def event_callback(
    event: dict[str, Any],
    *,
    event_id: str = "Ev001",
    team_id: str = "T123",
    api_app_id: str = "A123",
) -> dict[str, Any]:
    """Wrap an event the way the Events API delivers it (``type: event_callback``)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "UBOT", "is_bot": True}],
    }


@dataclass(slots=True)
class Delivery:
    """What the app answered to one request Slack sent it."""

    status: int
    body: str


async def deliver(
    url: str,
    signing_secret: str,
    body: str,
    *,
    content_type: str = "application/json",
    retry_num: int | None = None,
    timestamp: int | None = None,
    signature: str | None = None,
) -> Delivery:
    """POST a request to the app as Slack does: signed with the signing secret.

    ``retry_num`` adds Slack's retry headers; ``timestamp`` and ``signature``
    override the computed ones, to send stale or forged requests.
    """
    headers = {"Content-Type": content_type, **sign_request(signing_secret, body, timestamp)}
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body.encode(), headers=headers) as response,
    ):
        return Delivery(status=response.status, body=await response.text())
