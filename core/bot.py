"""The bot: one process's core, shared by every adapter.

It owns the settings, characters, plugins, the Redis connection and the LLM
client, and runs each turn through the hook pipeline. Adapters call
:meth:`Bot.handle_message` and :meth:`Bot.run_command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from honeychat.core import sanitize
from honeychat.core.characters import Character, CharacterRegistry
from honeychat.core.delivery import ReplyStreamer, interrupted, stop_on_interrupt
from honeychat.core.keyed_lock import KeyedLock
from honeychat.core.media import pipeline as media
from honeychat.core.media.keep import keep_images
from honeychat.core.media.local import expand_image_command
from honeychat.core.metrics import METRICS
from honeychat.core.ordering import ConversationOrder, LeaseLost
from honeychat.core.plugins import PluginHost
from honeychat.core.prompt import assemble
from honeychat.core.redact import register_secrets, settings_secrets
from honeychat.core.settings import Settings
from honeychat.core.shutdown import within
from honeychat.core.space_settings import SpaceSettings
from honeychat.core.spaces import MemoryScope, memory_scope, space_of
from honeychat.core.tool_turn import tool_loop
from honeychat.core.tools import UNTRUSTED_NOTE, Tool, ToolRegistry
from honeychat.core.turn import Command, CommandCall, Turn
from honeychat.core.types import (
    Channel,
    ConversationKey,
    IncomingMessage,
    MemoryContext,
    Reply,
    StoredMessage,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from honeychat.core.jobs import Jobs
    from honeychat.core.llm import LLMClient
    from honeychat.core.media_api import MediaAPI
    from honeychat.core.memory.redis_server import RedisConnection
    from honeychat.core.memory.service import MemoryService
    from honeychat.core.provenance import TrailStore

log = logging.getLogger(__name__)

EVENT_START_WAIT_SECONDS = 5.0
"""How long an event's work waits for the event that arrived before it to start."""

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@\S+)?(?:\s+(.*))?$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEEN_TTL_SECONDS = 3 * 86400
CUT_OFF_MARK = "[…cut off: the reply took too long]"
"""Ends a reply stopped by ``LLM_TOTAL_TIMEOUT``, shown to the user and stored with it."""
INTERRUPTED_MARK = "[…stopped]"
"""Ends a reply the user stopped while it streamed (Ctrl-C in the terminal), shown and stored."""


class Bot:
    """The platform-agnostic core of one honeychat process."""

    def __init__(
        self, settings: Settings | None = None, *, plugins: Sequence[tuple[str, object]] = ()
    ) -> None:
        self.settings = settings or Settings()
        register_secrets(settings_secrets(self.settings))
        self.plugins = PluginHost(self.settings.plugin_config)
        self._extra_plugins = list(plugins)
        self.characters: CharacterRegistry
        self.commands: dict[str, Command] = {}
        self.tools = ToolRegistry()
        """Tools the model may call (``honeychat_register_tools``, MCP servers)."""
        self.redis: aioredis.Redis | None = None
        self._redis_connection: RedisConnection | None = None
        self.llm: LLMClient | None = None
        self.media_api: MediaAPI | None = None
        """Transcription and speech (``/audio/*``), used when a turn carries audio."""
        self.memory: MemoryService | None = None
        self.jobs: Jobs | None = None
        """Durable background jobs on Redis (register handlers in ``honeychat_startup``)."""
        self.trails: TrailStore | None = None  # set by the provenance plugin
        self._locks = KeyedLock()
        self._last_event_start: asyncio.Event | None = None
        self.ordering = ConversationOrder(self)
        """Orders each conversation's turns across the processes sharing Redis."""
        self._seen_local: OrderedDict[str, float] = OrderedDict()
        self._user_characters: dict[str, str] = {}
        self.spaces = SpaceSettings(self)
        """Each space's character and reply policy, and who shares private memory in spaces."""
        self.started = False

    # Lifecycle

    async def start(self) -> None:
        """Load characters and plugins, connect the stores and the LLM client, run startup hooks."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.characters = CharacterRegistry.from_settings(s)
        for error in self.characters.errors:
            log.error("character not loaded: %s", error)
        for name, plugin in self._extra_plugins:
            self.plugins.register(plugin, name)
        self.plugins.load(disabled=s.disabled_plugins, plugins_dir=s.plugins_dir)
        await self._connect_redis()
        if s.llm_endpoint:
            from honeychat.core.llm import LLMClient

            self.llm = LLMClient(s)
        from honeychat.core.media_api import MediaAPI

        self.media_api = MediaAPI(s)
        self._collect_commands(await self.plugins.call("honeychat_register_commands", bot=self))
        self._collect_tools(await self.plugins.call("honeychat_register_tools", bot=self))
        await self.plugins.call("honeychat_startup", bot=self)
        if self.jobs is not None and s.jobs_worker:
            await self.jobs.start_worker(concurrency=s.jobs_concurrency)
        self.started = True

    async def _connect_redis(self) -> None:
        from honeychat.core.memory.redis_server import connect_redis

        try:
            self._redis_connection = await connect_redis(self.settings)
        except Exception as exc:
            log.error("hot memory (Redis) unavailable, running without it: %s", exc)
            return
        self.redis = self._redis_connection.client
        from honeychat.core.jobs import Jobs

        s = self.settings
        self.jobs = Jobs(
            self.redis,
            prefix=s.key_prefix,
            heartbeat_seconds=s.jobs_heartbeat_seconds,
            sweep_seconds=s.jobs_sweep_seconds,
            poll_seconds=min(s.jobs_poll_seconds, s.redis_timeout / 2),
        )

    def _collect_commands(self, results: list[Any]) -> None:
        for result in results:
            for command in result if isinstance(result, list | tuple) else [result]:
                if command.name in self.commands:
                    log.warning("command /%s registered twice; keeping the first", command.name)
                    continue
                self.commands[command.name] = command

    def _collect_tools(self, results: list[Any]) -> None:
        for result in results:
            for item in result if isinstance(result, list | tuple) else [result]:
                if isinstance(item, Tool):
                    self.tools.add(item)
                else:
                    log.error("honeychat_register_tools returned %r, not a Tool; ignored", item)

    async def stop(self) -> None:
        """Stop the job worker (jobs due now get ``SHUTDOWN_TIMEOUT``; a job still running
        then goes back to the queue for another worker), run shutdown hooks, then disconnect."""
        if not self.started:
            return
        self.started = False
        try:
            if self.jobs is not None:  # due jobs get this long; the rest wait in Redis
                await self.jobs.stop_worker(drain_seconds=self.settings.shutdown_timeout)
            # Bounded, so a hung store cannot keep the embedded valkey server running.
            await within(
                self.plugins.call("honeychat_shutdown", bot=self),
                self.settings.shutdown_timeout,
                "shutdown hooks",
            )
        finally:
            if self.llm is not None:
                await self.llm.aclose()
            if self.media_api is not None:
                await self.media_api.aclose()
            await self.ordering.close()
            if self.jobs is not None:
                await self.jobs.close()
            if self._redis_connection is not None:
                await self._redis_connection.close()

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Users and conversations

    def _pref_key(self, platform: str, user_id: str) -> str:
        user = ConversationKey(platform, user_id, "-").id.rsplit(":", 1)[0]
        return f"{self.settings.key_prefix}:user:{user}:character"

    async def current_character(self, platform: str, user_id: str) -> Character:
        """The character this user talks to now (the default until they pick one).

        Redis is the source of truth, so every process sharing it agrees; the
        process-local copy only stands in while Redis is unreachable.
        """
        local_key = f"{platform}:{user_id}"
        chosen = self._user_characters.get(local_key)
        if self.redis is not None:
            try:
                stored = await self.redis.get(self._pref_key(platform, user_id))
            except Exception as exc:
                log.debug("could not read the user's character: %s", exc)
            else:
                chosen = stored if isinstance(stored, str) else chosen
        if chosen is not None:
            self._user_characters[local_key] = chosen
        return (self.characters.get(chosen) if chosen else None) or self.characters.default

    async def set_character(self, platform: str, user_id: str, character_id: str) -> Character:
        """Switch the user's character; raises ``KeyError`` for an unknown id."""
        character = self.characters.get(character_id)
        if character is None:
            raise KeyError(character_id)
        self._user_characters[f"{platform}:{user_id}"] = character.id
        if self.redis is not None:
            try:
                await self.redis.set(self._pref_key(platform, user_id), character.id)
            except Exception as exc:
                log.warning("could not store the user's character: %s", exc)
        return character

    async def space_character(self, platform: str, space: str) -> Character:
        """The character a space's admins chose (the default until they pick one)."""
        chosen = await self.spaces.character_id(platform, space)
        return (self.characters.get(chosen) if chosen else None) or self.characters.default

    def forget_character_choice(self, user_id: str, platform: str | None = None) -> int:
        """Drop this process's copy of the user's chosen character (on ``platform``, or all)."""
        doomed = [
            key
            for key in self._user_characters
            if key.partition(":")[2] == user_id
            and (platform is None or key.partition(":")[0] == platform)
        ]
        for key in doomed:
            del self._user_characters[key]
        return len(doomed)

    async def conversation_for(self, message: IncomingMessage) -> tuple[ConversationKey, Character]:
        """The conversation ``message`` belongs to: its space's in a shared chat (with the
        space's character), else the user's private one (with the user's character)."""
        space = space_of(message)
        if space is not None:
            character = await self.space_character(message.platform, space)
            return ConversationKey.for_space(message.platform, space, character.id), character
        character = await self.current_character(message.platform, message.user_id)
        return ConversationKey(message.platform, message.user_id, character.id), character

    async def scope_for(self, message: IncomingMessage, character: Character) -> MemoryScope:
        """Which memories a reply to ``message`` may see (:func:`memory_scope` decides)."""
        shares = space_of(message) is not None and await self.spaces.shares_private(
            message.platform, message.user_id, character.id
        )
        return memory_scope(message, character.id, shares_private=shares)

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """Record that this process handles a platform event; False if it was recorded before.

        A check-and-set: in Redis (``SET NX``, kept three days) so every
        process sharing it agrees, else in process memory. It fails open:
        while Redis is unreachable a redelivered event may be answered twice
        rather than never.
        """
        key = f"{self.settings.key_prefix}:seen:{platform}:{event_id}"
        if self.redis is not None:
            try:
                return bool(await self.redis.set(key, "1", nx=True, ex=_SEEN_TTL_SECONDS))
            except Exception as exc:
                log.warning("dedupe store unavailable, using process memory: %s", exc)
        if key in self._seen_local:
            return False
        self._seen_local[key] = time.monotonic()
        while len(self._seen_local) > 10_000:
            self._seen_local.popitem(last=False)
        return True

    async def seen_before(self, platform: str, event_id: str) -> bool:
        """Deprecated name of ``not await claim_event(...)`` (it records the event too)."""
        return not await self.claim_event(platform, event_id)

    async def handle_event(
        self, platform: str, event_id: str | None, work: Coroutine[Any, Any, Any]
    ) -> bool:
        """Run an adapter's ``work`` for one platform event, once per ``event_id``.

        Every adapter routes each update through here, so dedupe of
        redeliveries (a webhook retried, a gateway replay after a resume, an
        update polled again after a restart) is one policy, owned by the core.
        Returns whether the work ran.
        """
        earlier, started = self._last_event_start, asyncio.Event()
        self._last_event_start = started
        try:
            claimed = event_id is None or await self.claim_event(platform, event_id)
            # The claim is a Redis round trip, and two claims may come back in either
            # order: the work of events starts in the order they arrived, so their
            # messages queue (core.ordering) in the platform's order.
            if earlier is not None and not earlier.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(EVENT_START_WAIT_SECONDS):
                        await earlier.wait()
        finally:
            # Set before ``work`` runs: waiters resume only after ``work`` has run up to
            # its first await, where a message takes its place in its queue.
            started.set()
        if not claimed:
            work.close()
            log.info("%s event %s was already handled; skipped", platform, event_id)
            return False
        await work
        return True

    # Messages

    def clean_text(self, text: str) -> tuple[str, bool]:
        """Make text storable (see :mod:`honeychat.core.sanitize`), strip control characters
        and cut to ``MAX_MESSAGE_CHARS``; returns (text, was_cut)."""
        text = _CONTROL.sub("", sanitize.clean_text(text)).strip()
        limit = self.settings.max_message_chars
        if len(text) > limit:
            return text[:limit], True
        return text, False

    async def handle_message(self, message: IncomingMessage, channel: Channel) -> None:
        """Answer one incoming message. Never raises: failures become a friendly sentence.

        A message that will be a chat turn takes its place in its
        conversation's queue in Redis on arrival, and its turn runs when every
        earlier message of the conversation (by the platform's order, on any
        process sharing Redis) is answered (see :mod:`honeychat.core.ordering`).
        Commands, and every message while Redis is unreachable, are handled in
        arrival order per process: the per-user lock is taken before the first
        ``await``, so concurrent calls queue in the order they were made.
        """
        if not message.user_id.strip():
            log.warning("ignored a %s message without a user id", message.platform)
            return
        ticket = self.ordering.arrive(message if self._may_be_turn(message) else None)
        try:
            if ticket is not None:
                await self._handle(message, channel)
            else:
                async with self._locks.hold(f"{message.platform}:{message.user_id}"):
                    await self._handle(message, channel)
        except LeaseLost as exc:
            log.error("%s", exc)  # the process now holding the conversation answers on
        except Exception:
            log.exception("turn failed for %s:%s", message.platform, message.user_id)
            try:
                _, character = await self.conversation_for(message)
                await channel.send(Reply(character.error_message))
            except Exception:
                log.exception("could not even send the error reply")
        finally:
            await self.ordering.leave(ticket)

    def _may_be_turn(self, message: IncomingMessage) -> bool:
        """Whether ``message`` will become a chat turn (not a command, addressed to the bot)."""
        text, _ = self.clean_text(message.text)
        kept = message.addresses_bot or self._kept_unaddressed(message)
        return bool(text) and kept and not _COMMAND.match(text)

    def _kept_unaddressed(self, message: IncomingMessage) -> bool:
        """Whether a message not addressed to the bot still goes into its space's memory
        (and may get a reply by the space's policy)."""
        return space_of(message) is not None and self.settings.space_record_unaddressed

    async def _handle(self, message: IncomingMessage, channel: Channel) -> None:
        message = expand_image_command(message)
        text, was_cut = self.clean_text(message.text)
        command = _COMMAND.match(text)
        if command:
            reply = await self.run_command(
                message, command.group(1).lower(), (command.group(2) or "").strip()
            )
            await channel.send(reply)
            return
        if not message.addresses_bot and not (text and self._kept_unaddressed(message)):
            return
        conversation, character = await self.conversation_for(message)
        if not text and not media.usable_attachments(
            message, media.options_for(self, message, character)
        ):
            if message.attachments and message.addresses_bot:
                await channel.send(media.unusable_reply(message))
            return
        async with self.ordering.hold(conversation):
            if conversation.is_space and not await self._answers_in_space(message, text):
                await self._record(message, conversation, character, text)
                return
            await self._turn(message, channel, conversation, character, text, was_cut)

    async def _answers_in_space(self, message: IncomingMessage, text: str) -> bool:
        """The space's reply policy and rate limit, for one message posted in it."""
        space = space_of(message)
        assert space is not None
        policy = await self.spaces.policy(message.platform, space)
        if not policy.wants(message, text, random.random()):
            return False
        limit = (
            self.settings.space_replies_per_minute
            if policy.per_minute is None
            else policy.per_minute
        )
        if await self.spaces.take_reply_slot(message.platform, space, limit):
            return True
        log.info(
            "reply limit reached in %s:%s; message kept without a reply", message.platform, space
        )
        return False

    async def _record(
        self,
        message: IncomingMessage,
        conversation: ConversationKey,
        character: Character,
        text: str,
    ) -> None:
        """Keep a space message the bot does not answer in the space's memory."""
        tier_name, tier = self.settings.tier_for(message.platform, message.user_id)
        turn = Turn(self, message, conversation, character, tier_name, tier, text)
        await self.ordering.confirm()
        await self.plugins.first(
            "honeychat_persist", conversation=conversation, role="user", text=text, turn=turn
        )
        await self.plugins.call("honeychat_schedule_summary", conversation=conversation, bot=self)

    async def _turn(
        self,
        message: IncomingMessage,
        channel: Channel,
        conversation: ConversationKey,
        character: Character,
        text: str,
        was_cut: bool,
    ) -> None:
        started = time.perf_counter()
        METRICS.messages_handled.labels(message.platform).inc()
        tier_name, tier = self.settings.tier_for(message.platform, message.user_id)
        turn = Turn(self, message, conversation, character, tier_name, tier, text)
        turn.scope = await self.scope_for(message, character)
        stop = await self.plugins.first("honeychat_ingest", turn=turn)
        if isinstance(stop, Reply):
            await channel.send(stop)
            return
        if message.attachments and (refusal := await media.prepare_media(turn, channel)):
            await channel.send(refusal)
            return
        await self.ordering.confirm()
        stored: StoredMessage | None = await self.plugins.first(
            "honeychat_persist", conversation=conversation, role="user", text=turn.text, turn=turn
        )
        if self.settings.media_keep_images and stored is not None and turn.media:
            await keep_images(self.settings.data_dir, conversation, stored.seq, turn.media)
        turn.context = (
            await self.plugins.first("honeychat_memory_context", turn=turn) or MemoryContext()
        )
        sections: list[str] = []
        for result in await self.plugins.call("honeychat_prompt_sections", turn=turn):
            sections.extend([result] if isinstance(result, str) else result)
        tools = tool_loop(turn)
        if tools is not None:
            sections.append(UNTRUSTED_NOTE)
        prompt = assemble(
            character,
            turn.context,
            turn.text,
            sections=sections,
            current_seq=stored.seq if stored else None,
            user_name=message.user_name,
            in_space=conversation.is_space,
        )
        messages = media.with_image_parts(prompt.messages, turn.media)
        if prompt.fired:
            turn.extras["lorebook_fired"] = prompt.lorebook_report()
        if self.llm is None:
            await channel.send(
                Reply("I can't think right now: no language model is configured for me.")
            )
            return
        model = character.model or tier.model
        spoken = media.spoken_reply_mode(turn, channel)
        streaming = self.settings.llm_streaming and not turn.extras.get("no_stream")
        async with ReplyStreamer(channel, stream=streaming and spoken != "instead") as out:
            llm_started = time.perf_counter()
            completion = None
            # The total deadline bounds retries, fallbacks and a trickling stream;
            # the LLM client's read timeout is the idle limit between bytes.
            deadline = asyncio.timeout(self.settings.llm_total_timeout)
            try:
                async with deadline, stop_on_interrupt(channel, deadline):
                    stream = self.llm.stream(
                        messages,
                        model=model,
                        fallback_models=tier.fallback_models,
                        max_tokens=tier.max_output_tokens,
                        tools=tools,
                    )
                    async with stream:
                        async for delta in stream:
                            await out.feed(delta)
                completion = stream.completion
            except TimeoutError as exc:
                stopped = deadline.expired() and interrupted(channel)
                if not stopped:
                    METRICS.llm_errors.labels(model).inc()
                if not deadline.expired():  # a timeout of something else, not the reply's
                    log.error("LLM failed for %s: %s", conversation.id, exc)
                    await out.finish(character.error_message)
                    return
                if stopped:
                    log.info("reply for %s stopped by the user", conversation.id)
                else:
                    log.error(
                        "LLM reply for %s cut off after %gs",
                        conversation.id,
                        self.settings.llm_total_timeout,
                    )
                if not out.text.strip():
                    if not stopped:  # stopped before a word: nothing to show or keep
                        await out.finish(character.error_message)
                    return
                turn.extras["cut_off"] = INTERRUPTED_MARK if stopped else CUT_OFF_MARK
            except Exception as exc:
                METRICS.llm_errors.labels(model).inc()
                log.error("LLM failed for %s: %s", conversation.id, exc)
                await out.finish(character.error_message)
                return
            turn.timings["llm"] = time.perf_counter() - llm_started
            METRICS.llm_latency.labels(model).observe(turn.timings["llm"])
            turn.model = completion.model if completion else model
            turn.usage = dict(completion.usage) if completion else {}
            turn.reply_text = out.text.strip()
            if turn.extras.get("cut_off"):
                turn.reply_text += f" {turn.extras['cut_off']}"
            await self.plugins.call("honeychat_transform_reply", turn=turn)
            if not turn.reply_text.strip():
                log.error("the reply for %s was empty; not stored", conversation.id)
                await out.finish(character.error_message)
                return
            if was_cut:
                turn.reply_text += f"\n\n(Your message was long, so I only read the first {self.settings.max_message_chars} characters.)"
            # A voice-only character's reply is the voice note; text only if speech fails.
            if spoken != "instead" or not await media.speak_reply(turn, channel):
                await out.finish(turn.reply_text)
        await self.ordering.confirm()
        await self.plugins.first(
            "honeychat_persist",
            conversation=conversation,
            role="assistant",
            text=turn.reply_text,
            turn=turn,
        )
        await self.plugins.call("honeychat_schedule_summary", conversation=conversation, bot=self)
        turn.timings["total"] = time.perf_counter() - started
        turn.timings["overhead"] = turn.timings["total"] - turn.timings["llm"]
        METRICS.turn_overhead.observe(turn.timings["overhead"])
        if spoken == "after":  # after the timings: speech is not overhead
            await media.speak_reply(turn, channel)
        await self.plugins.call("honeychat_turn_complete", turn=turn)

    # Commands

    async def run_command(
        self, message: IncomingMessage, name: str, args: str = "", *, from_choice: bool = False
    ) -> Reply:
        """Run a chat command and return its reply (adapters render it)."""
        command = self.commands.get(name.lower())
        if command is None:
            return Reply(f"I don't know the command /{name}. Try /help.", ephemeral=True)
        conversation, character = await self.conversation_for(message)
        call = CommandCall(self, message, conversation, character, args, from_choice)
        try:
            return await command.handler(call)
        except Exception:
            log.exception("command /%s failed", name)
            return Reply(
                "Something went wrong with that command. Please try again in a moment.",
                ephemeral=True,
            )
