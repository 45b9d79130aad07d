"""A channel that records what the core delivers, for tests of the pipeline and plugins."""

from __future__ import annotations

from dataclasses import dataclass, field

from honeychat.core.types import ChannelLimits, Reply, SentMessage


@dataclass
class RecordingChannel:
    """Implements :class:`~honeychat.core.types.Channel` in memory.

    ``messages`` holds the current text of every message sent (edits applied),
    ``events`` the calls in order: ``("typing",)``, ``("send", id, text)``,
    ``("edit", id, text)``.
    """

    limits: ChannelLimits = field(
        default_factory=lambda: ChannelLimits(edit_interval=0, typing_interval=0)
    )
    messages: dict[str, str] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    events: list[tuple[str, ...]] = field(default_factory=list)

    async def typing(self) -> None:
        self.events.append(("typing",))

    async def send(self, reply: Reply) -> SentMessage:
        message_id = str(len(self.messages) + 1)
        self.messages[message_id] = reply.text
        self.replies.append(reply)
        self.events.append(("send", message_id, reply.text))
        return SentMessage(message_id, "test")

    async def edit(self, message: SentMessage, text: str) -> None:
        self.messages[message.message_id] = text
        self.events.append(("edit", message.message_id, text))

    @property
    def texts(self) -> list[str]:
        """The final text of every message, in the order they were sent."""
        return list(self.messages.values())

    @property
    def last_text(self) -> str:
        return self.texts[-1] if self.messages else ""
