"""Shared pytest fixtures. Each section belongs to one part of honeychat."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis.asyncio

from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.redis_server import EmbeddedRedis

# ---------------------------------------------------------------------------
# The embedding model cache
#
# Prepared models (the one-time ONNX export) go to a cache of the test run's
# own, never the user's ~/.cache/honeychat: pytest's cache directory in the
# checkout (.pytest_cache, kept between runs, so a clone exports once), or a
# temporary directory when the cache provider is off. Set in the environment,
# so the CLI subprocesses the tests start use it too.
# ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    cache = getattr(config, "cache", None)
    models = (
        cache.mkdir("honeychat-models")
        if cache is not None
        else Path(tempfile.mkdtemp(prefix="honeychat-models-"))
    )
    os.environ["HONEYCHAT_CACHE_DIR"] = str(models)


# ---------------------------------------------------------------------------
# Redis (hot memory layer)
#
# Tests run against real servers only: the embedded valkey (always) and, when
# the environment variable REDIS_URL is set, that server as well. The URL must
# name a database of its own (CI: redis://127.0.0.1:6379/13); the fixtures
# FLUSHDB only that database, before and after each test.
# ---------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL") or None
REDIS_BACKENDS = ["embedded", *(["external"] if REDIS_URL else [])]
"""Backends the ``redis_client`` fixture runs on; ``external`` only when REDIS_URL is set."""


def _external_db(url: str) -> int:
    """The database index named by a test REDIS_URL; refuses a URL that names none."""
    parsed = urlparse(url)
    path = parsed.path.strip("/")
    query_db = [part[3:] for part in parsed.query.split("&") if part.startswith("db=")]
    text = query_db[0] if query_db else path
    if not text.isdigit():
        pytest.fail(
            f"REDIS_URL={url!r} must name a dedicated database, e.g. redis://127.0.0.1:6379/13; "
            "the tests FLUSHDB it"
        )
    return int(text)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test on REDIS_URL's database in one xdist group.

    The suite runs on several workers (``-n auto --dist loadgroup``), and those
    tests FLUSHDB one shared database: one worker runs them all, one at a time.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("redis_client") == "external":
            item.add_marker(pytest.mark.xdist_group("external-redis"))


@pytest.fixture
def embedded_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A started embedded valkey server on a fresh data directory (``tmp_path/data``).

    Released after the test, then stopped if still running (a failed test may
    leave connections open), so no daemon outlives the test.
    """
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.release_sync()
        server.stop()


@pytest.fixture(params=REDIS_BACKENDS)
async def redis_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[redis.asyncio.Redis]:
    """An empty database on every available backend (``decode_responses=True``).

    Parametrized over :data:`REDIS_BACKENDS`: ``embedded`` is a fresh embedded
    valkey in ``tmp_path``; ``external`` is the database named in REDIS_URL,
    flushed before and after the test.
    """
    if request.param == "embedded":
        server = EmbeddedRedis(tmp_path / "data")
        server.start()
        client = server.async_client()
        try:
            yield client
        finally:
            await client.aclose()
            server.release_sync()
            server.stop()
        return

    assert REDIS_URL is not None
    db = _external_db(REDIS_URL)
    client = redis.asyncio.from_url(REDIS_URL, decode_responses=True, socket_timeout=5.0)
    info = await client.client_info()
    assert int(info["db"]) == db, f"connected to db {info['db']}, expected {db}"
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


HotStoreFactory = Callable[..., RedisHotStore]


@pytest.fixture
def hot_store_factory(redis_client: redis.asyncio.Redis) -> HotStoreFactory:
    """Build :class:`RedisHotStore` objects on ``redis_client`` (so on every backend).

    Keyword arguments override the defaults ``prefix="hctest"``,
    ``buffer_size=20``, ``ttl_seconds=3600``.
    """

    def make(**overrides: object) -> RedisHotStore:
        options: dict[str, object] = {"prefix": "hctest", "buffer_size": 20, "ttl_seconds": 3600.0}
        options.update(overrides)
        return RedisHotStore(redis_client, **options)

    return make


@pytest.fixture
def hot_store(hot_store_factory: HotStoreFactory) -> RedisHotStore:
    """A :class:`RedisHotStore` with the factory's defaults, on every backend."""
    return hot_store_factory()
