"""The Slack adapter: a slack-bolt async app over the Events API (HTTP) or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from honeychat.adapters.slack.blocks import CHOICE_ACTION_ID, render_reply, slack_codec
from honeychat.adapters.slack.channel import SlackChannel
from honeychat.adapters.slack.commands import (
    SLASH_COMMAND,
    action_message,
    command_message,
    parse_subcommand,
    selected_value,
    slash_names,
    usage,
)
from honeychat.adapters.slack.events import (
    PLATFORM,
    incoming_message,
    is_direct_channel,
    is_person_message,
)
from honeychat.adapters.slack.logs import bolt_logger
from honeychat.adapters.slack.media import with_downloads
from honeychat.adapters.slack.members import SlackMembers
from honeychat.adapters.slack.settings import SlackSettings
from honeychat.core.inflight import InflightTasks
from honeychat.core.intake import EventIntake
from honeychat.core.types import IncomingMessage, Reply

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
"""The one Request URL for events, the slash command and interactivity."""
STOP_GRACE_SECONDS = 30.0
_SORRY = "Sorry, something went wrong on my side. Please try again in a moment."


def api_url(configured: str | None) -> str | None:
    """``SLACK_API_URL`` as AsyncWebClient wants it (trailing slash); None means slack.com."""
    if not configured:
        return None
    return configured if configured.endswith("/") else configured + "/"


class SlackAdapter:
    """Serves the bot on one Slack workspace.

    With ``SLACK_APP_TOKEN`` set it connects over Socket Mode (no public URL);
    otherwise it serves the Events API on ``SLACK_HOST:SLACK_PORT`` at
    ``/slack/events`` and verifies every request with ``SLACK_SIGNING_SECRET``.
    Listeners acknowledge at once; the turn runs afterwards in a tracked task.
    """

    name = PLATFORM

    def __init__(self, bot: Bot, settings: SlackSettings | None = None) -> None:
        """``settings`` default to the ``slack`` plugin's validated config."""
        settings = settings if settings is not None else bot.plugins.config(PLATFORM)
        if not settings.slack_bot_token:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        self.socket_mode = bool(settings.slack_app_token)
        if not self.socket_mode and not settings.slack_signing_secret:
            raise ValueError(
                "Slack HTTP mode needs SLACK_SIGNING_SECRET "
                "(or set SLACK_APP_TOKEN for Socket Mode)"
            )
        self.bot = bot
        self.host = settings.slack_host
        self.port = settings.slack_port
        """The HTTP port; after :meth:`start` the port actually bound (useful with 0)."""
        base_url = api_url(settings.slack_api_url)
        common: dict[str, Any] = {
            "name": "honeychat",
            "signing_secret": settings.slack_signing_secret or "",
            "request_verification_enabled": not self.socket_mode,
            # Acknowledge events only after the listener returns: the listener records the
            # event in Redis first (EventIntake), so nothing acknowledged is lost in a crash.
            "process_before_response": True,
            "logger": bolt_logger(),  # never logs unverified request bodies
        }
        if base_url:
            client = AsyncWebClient(token=settings.slack_bot_token, base_url=base_url)
            self.app = AsyncApp(client=client, **common)
        else:
            # Let bolt build its default client (passing one would make bolt warn
            # whenever SLACK_BOT_TOKEN is also in the environment).
            self.app = AsyncApp(token=settings.slack_bot_token, **common)
        self.client: AsyncWebClient = self.app.client
        self._api_url = base_url
        self._app_token = settings.slack_app_token
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self.inflight = InflightTasks("slack")
        self.codec = slack_codec(bot)
        self.intake = EventIntake(bot, PLATFORM, self._handle_recorded, self.inflight)
        self.members = SlackMembers(self.client)
        self._register()

    # Lifecycle

    async def start(self) -> None:
        """Connect over Socket Mode, or start listening for HTTP requests."""
        await self.intake.start()
        if self.socket_mode:
            self._socket = AsyncSocketModeHandler(self.app, self._app_token, web_client=self.client)
            await self._socket.connect_async()
            log.info("slack adapter connected over Socket Mode")
            return
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("slack adapter listening on %s:%d%s", self.host, self.port, EVENTS_PATH)

    async def stop(self) -> None:
        """Stop receiving, give in-flight turns time to finish, then disconnect."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.intake.stop()
        await self.drain(STOP_GRACE_SECONDS)

    async def drain(self, within: float) -> int:
        """Wait up to ``within`` s for turns and commands in flight; cancel the rest (returns
        how many were cancelled)."""
        return await self.inflight.drain(within)

    def web_app(self) -> web.Application:
        """An aiohttp application serving :data:`EVENTS_PATH`, to run alone or mount elsewhere."""
        app = web.Application()
        app.router.add_post(EVENTS_PATH, self._http_request)
        return app

    async def _http_request(self, request: web.Request) -> web.Response:
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work after the ack, tracked so :meth:`stop` can wait for it."""
        self.inflight.spawn(work)

    # Listeners (bolt injects arguments by name)

    def _register(self) -> None:
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        self.app.command(SLASH_COMMAND)(self._on_command)
        self.app.action(CHOICE_ACTION_ID)(self._on_choice)

    async def _on_message(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """message.im: every direct message is a turn. In channels (message.channels and
        message.groups, when subscribed) a message goes to the core, which keeps it in the
        space's memory; one mentioning the bot is left to its app_mention event."""
        channel = str(event.get("channel", ""))
        if not is_person_message(event, context.bot_user_id):
            return
        if not is_direct_channel(channel, event.get("channel_type")):
            if f"<@{context.bot_user_id}>" in str(event.get("text") or ""):
                return  # the app_mention event of the same message is the turn
        await self._accept(body, context)

    async def _on_mention(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """app_mention in a channel: answer in the message's thread."""
        channel = str(event.get("channel", ""))
        if is_direct_channel(channel, event.get("channel_type")):
            return  # the message.im event of the same message is the turn
        if is_person_message(event, context.bot_user_id):
            await self._accept(body, context)

    async def _accept(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """Dedupe a retried event, record it (EventIntake), then let bolt acknowledge."""
        event_id = body.get("event_id")
        payload = {"body": body, "bot_user_id": context.bot_user_id}
        await self.bot.handle_event(
            PLATFORM, str(event_id) if event_id else None, self.intake.submit(payload)
        )

    async def _handle_recorded(self, payload: dict[str, Any]) -> None:
        """Answer one recorded message or app_mention event (on whichever process reads it)."""
        body: dict[str, Any] = payload["body"]
        event: dict[str, Any] = body["event"]
        mentioned = event.get("type") == "app_mention"
        message = incoming_message(event, body, payload.get("bot_user_id"), mentioned=mentioned)
        thread_ts = event.get("thread_ts") or (event.get("ts") if mentioned else None)
        channel = SlackChannel(
            self.client,
            str(event.get("channel", "")),
            thread_ts=thread_ts,
            user=event.get("user"),
            codec=self.codec,
        )
        message = with_downloads(message, self.client.token or "", self._api_url)
        if not message.is_direct:
            message = await self._as_member(message, str(event.get("user", "")))
        await self.bot.handle_message(message, channel)

    async def _as_member(self, message: IncomingMessage, slack_user: str) -> IncomingMessage:
        """A channel message with its author's display name and workspace admin check."""

        async def is_admin() -> bool:
            return await self.members.is_admin(slack_user)

        name = message.user_name or await self.members.display_name(slack_user)
        return replace(message, user_name=name, is_space_admin=is_admin)

    async def _on_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """``/honeychat <subcommand> [args]``: ack now, answer ephemerally through response_url."""
        await ack()
        name, args = parse_subcommand(str(command.get("text", "")))
        self._spawn(self._command(command_message(command), name, args, respond, from_choice=False))

    async def _on_choice(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """A pick in our select menu runs its command and replaces the menu message."""
        await ack()
        decoded = await self.codec.decode(selected_value(body, CHOICE_ACTION_ID) or "")
        if decoded is None:
            return
        name, value = decoded
        self._spawn(self._command(action_message(body), name, value, respond, from_choice=True))

    async def _command(
        self,
        message: IncomingMessage,
        name: str,
        args: str,
        respond: AsyncRespond,
        *,
        from_choice: bool,
    ) -> None:
        slack_user = message.user_id.rpartition(":")[2]
        if not message.is_direct:
            message = await self._as_member(message, slack_user)
        try:
            if name in self.bot.commands:
                reply = await self.bot.run_command(message, name, args, from_choice=from_choice)
            else:
                reply = Reply(text=usage(self.bot.commands), ephemeral=True)
        except Exception:
            log.exception("slack command %s failed", name)
            reply = Reply(text=_SORRY, ephemeral=True)
        reply = Reply(
            text=slash_names(reply.text, self.bot.commands),
            choices=reply.choices,
            ephemeral=reply.ephemeral,
        )
        try:
            # Slash command answers are private, as is the Slack habit; a pick
            # replaces the menu it came from.
            await respond(
                response_type="ephemeral",
                replace_original=True if from_choice else None,
                **render_reply(reply, self.codec),
            )
        except Exception:
            log.exception("slack response for command %s not delivered", name)
