"""Downloading an attachment: through the adapter's fetcher, under a size cap and a deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable

import aiohttp

from honeychat.core.media.errors import (
    MediaDownloadFailed,
    MediaError,
    MediaTooLarge,
    MediaUnsupported,
)
from honeychat.core.media.items import MediaItem, MediaKind
from honeychat.core.media.sniff import sniff
from honeychat.core.types import Attachment

log = logging.getLogger(__name__)

_CHUNK_BYTES = 65536


async def read_capped(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """Join ``chunks``, raising :class:`MediaTooLarge` as soon as they pass ``limit`` bytes.

    For adapters' fetchers: the download stops at the cap instead of
    buffering whatever the server sends.
    """
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise MediaTooLarge(f"more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def get_capped(
    url: str, limit: int, *, what: str, headers: dict[str, str] | None = None
) -> bytes:
    """GET ``url``, stopping as soon as the body passes ``limit`` bytes (:class:`MediaTooLarge`).

    For adapters whose platform serves files over plain HTTPS (Slack, Discord's
    CDN): the connection is dropped at the cap, so an oversized file costs at
    most ``limit`` bytes and a chunk. ``what`` names the source in errors.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        if response.status != 200:
            raise MediaDownloadFailed(f"{what} answered HTTP {response.status}")
        return await read_capped(response.content.iter_chunked(_CHUNK_BYTES), limit)


async def download(
    attachment: Attachment, kind: MediaKind, *, limit: int, timeout: float
) -> MediaItem:
    """The attachment's bytes as a checked :class:`MediaItem` of ``kind``.

    Raises a :class:`~honeychat.core.media.errors.MediaError` when the
    declared or real size passes ``limit``, the download fails or takes
    longer than ``timeout`` seconds, or the bytes are not a ``kind`` we accept.
    """
    if attachment.size is not None and attachment.size > limit:
        raise MediaTooLarge(f"{attachment.kind} declared {attachment.size} bytes > {limit}")
    if attachment.fetch is None:
        raise MediaDownloadFailed(f"the adapter cannot download this {attachment.kind}")
    try:
        async with asyncio.timeout(timeout):
            data = await attachment.fetch(limit)
    except MediaError:
        raise
    except TimeoutError as exc:
        raise MediaDownloadFailed(f"downloading a {attachment.kind} took over {timeout}s") from exc
    except Exception as exc:
        # Adapters' errors may carry URLs with tokens in them: log the type only.
        raise MediaDownloadFailed(
            f"downloading a {attachment.kind} failed ({type(exc).__name__})"
        ) from None
    if len(data) > limit:
        raise MediaTooLarge(f"{attachment.kind} is {len(data)} bytes > {limit}")
    found = sniff(data)
    if found is None or found.kind != kind:
        raise MediaUnsupported(
            f"a {attachment.kind} whose bytes are "
            + (f"{found.mime_type}, not {kind}" if found else "no format we accept")
        )
    return MediaItem(
        kind=kind,
        source=attachment.kind,
        data=data,
        mime_type=found.mime_type,
        extension=found.extension,
        name=attachment.name,
        duration=attachment.duration,
    )
