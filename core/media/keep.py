"""Keeping the images users send (``MEDIA_KEEP_IMAGES``), and deleting them with the conversation.

Off by default: an image is used for its turn and dropped, and memory keeps
only the words (kind, caption, description). When on, each image is written
to ``DATA_DIR/media/<conversation digest>/<seq>-<n>.<ext>`` (``seq``: the
stored user message it came with), readable by the bot's user only.
:func:`forget_images` runs on the one path that clears a conversation
(``/forget``, ``honeychat memory clear``, the inspector), whatever the setting
is now, so images kept earlier go too. Several processes must share
``DATA_DIR`` for that to reach every copy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from honeychat.core.media.items import MediaItem
from honeychat.core.types import ConversationKey

log = logging.getLogger(__name__)


def images_dir(data_dir: Path, conversation: ConversationKey) -> Path:
    """Where ``conversation``'s kept images live (its digest: no user id in the path)."""
    return data_dir / "media" / conversation.digest


async def keep_images(
    data_dir: Path, conversation: ConversationKey, seq: int, media: list[MediaItem]
) -> list[Path]:
    """Write the turn's images; returns their paths. Failures are logged, never raised."""
    images = [item for item in media if item.kind == "image"]
    if not images:
        return []

    def write() -> list[Path]:
        folder = images_dir(data_dir, conversation)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths = []
        for number, item in enumerate(images, start=1):
            path = folder / f"{seq}-{number}.{item.extension}"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(item.data)
            paths.append(path)
        return paths

    try:
        return await asyncio.to_thread(write)
    except OSError as error:
        log.warning("could not keep the images of %s: %s", conversation.id, error)
        return []


def forget_images(data_dir: Path, conversation: ConversationKey) -> None:
    """Delete every kept image of ``conversation`` (nothing to do if none were kept)."""
    shutil.rmtree(images_dir(data_dir, conversation), ignore_errors=True)
