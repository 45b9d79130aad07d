"""``/image PATH [caption]`` in the local terminal chat: a file on this machine as a photo.

Only the ``terminal`` platform (the operator's own chat, ``honeychat chat``)
may name local files: a remote user must never make the bot read the disk.
The file goes through the same checks as any download (size cap, type by
content).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

from honeychat.core.media.errors import MediaTooLarge
from honeychat.core.types import Attachment, AttachmentFetcher, IncomingMessage

LOCAL_PLATFORMS = frozenset({"terminal"})
"""Platforms whose user is the operator at this machine."""

_IMAGE_COMMAND = re.compile(r"^/image\s+(\"[^\"]+\"|'[^']+'|\S+)\s*(.*)$", re.DOTALL)


def expand_image_command(message: IncomingMessage) -> IncomingMessage:
    """``message`` with ``/image PATH caption`` turned into a photo attachment plus caption.

    Anything else (and any other platform) is returned unchanged.
    """
    if message.platform not in LOCAL_PLATFORMS:
        return message
    found = _IMAGE_COMMAND.match(message.text.strip())
    if found is None:
        return message
    path = Path(found.group(1).strip("\"'")).expanduser()
    attachment = Attachment(kind="photo", name=path.name, fetch=_reader(path))
    return dataclasses.replace(
        message,
        text=found.group(2).strip(),
        attachments=(*message.attachments, attachment),
    )


def _reader(path: Path) -> AttachmentFetcher:
    async def fetch(limit: int) -> bytes:
        def read() -> bytes:
            with path.open("rb") as file:
                data = file.read(limit + 1)
            if len(data) > limit:
                raise MediaTooLarge(f"{path.name} is over {limit} bytes")
            return data

        return await asyncio.to_thread(read)

    return fetch
