"""The embedded valkey server and the hot layer's connection factory, on real processes."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from honeychat.core.memory.hot import RedisHotStore
from honeychat.core.memory.redis_server import (
    UNIX_PATH_MAX,
    EmbeddedRedis,
    connect_redis,
)
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.settings import Settings
from honeychat.core.types import ConversationKey, Role, utc_now

ALICE = ConversationKey("telegram", "1001", "luna")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def plain_client(server: EmbeddedRedis) -> redis.Redis:
    """A connection that is not honeychat's (no client name)."""
    return redis.Redis(
        unix_socket_path=str(server.socket_path),
        socket_timeout=5,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data directory; any daemon a failing test left on it is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    EmbeddedRedis(path).stop()


def test_starts_with_no_config(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        assert not server.reused
        assert server.socket_path == data_dir.resolve() / "redis" / "valkey.sock"
        assert server.socket_path.is_socket()
        pid = server.pid
        assert pid is not None and alive(pid)
        with plain_client(server) as client:
            assert client.ping()
            config = client.config_get("*")
            assert config["port"] == "0"  # no TCP listener
            assert config["appendonly"] == "yes"
            assert config["dir"] == str(data_dir.resolve() / "redis")
            assert config["unixsocketperm"] == "700"
            name = client.client_list()
        assert server.client_name.startswith(f"honeychat-{os.getpid()}-")
        assert server.client_name in {c["name"] for c in name}  # the handle's anchor
    finally:
        assert server.release_sync()
    assert not alive(pid)
    assert not server.socket_path.exists()
    assert not server.pidfile.exists()


async def test_data_survives_a_restart(data_dir: Path) -> None:
    first = EmbeddedRedis(data_dir)
    await first.start_async()
    client = first.async_client()
    await client.set("greeting", "привет 🌸")
    await client.rpush("list", "a", "b")
    await client.aclose()
    old_pid = first.pid
    assert await first.release()
    assert old_pid is not None and not alive(old_pid)

    second = EmbeddedRedis(data_dir)
    await second.start_async()
    try:
        assert not second.reused and second.pid != old_pid
        client = second.async_client()
        assert await client.get("greeting") == "привет 🌸"
        assert await client.lrange("list", 0, -1) == ["a", "b"]
        await client.aclose()
    finally:
        assert await second.release()
    assert any((data_dir / "redis" / "appendonlydir").iterdir())


def test_second_handle_reuses_and_last_one_out_shuts_down(data_dir: Path) -> None:
    first = EmbeddedRedis(data_dir)
    first.start()
    second = EmbeddedRedis(data_dir)
    second.start()
    pid = first.pid
    assert pid is not None
    assert second.reused and second.pid == pid
    assert first.client_name != second.client_name

    assert not first.release_sync()  # the second handle still uses it
    assert alive(pid) and second.ping()
    assert not first.release_sync()  # releasing twice changes nothing

    assert second.release_sync()
    assert not alive(pid)
    assert not second.socket_path.exists() and not second.pidfile.exists()


def test_release_leaves_the_server_to_other_clients(embedded_redis: EmbeddedRedis) -> None:
    pid = embedded_redis.pid
    assert pid is not None
    other = plain_client(embedded_redis)
    other.set("k", "v")
    try:
        assert not embedded_redis.release_sync()
        assert alive(pid)
        assert other.get("k") == "v"
    finally:
        other.close()

    again = EmbeddedRedis(embedded_redis.data_dir)
    again.start()
    assert again.reused and again.pid == pid
    assert again.release_sync()
    assert not alive(pid)


def test_stop_shuts_down_whoever_is_connected(embedded_redis: EmbeddedRedis) -> None:
    pid = embedded_redis.pid
    assert pid is not None
    with plain_client(embedded_redis) as other:
        other.ping()
        assert EmbeddedRedis(embedded_redis.data_dir).stop()
        assert not alive(pid)
        with pytest.raises(redis.ConnectionError):
            other.ping()
    assert not embedded_redis.socket_path.exists()
    assert not EmbeddedRedis(embedded_redis.data_dir).stop()  # nothing left to stop


def test_server_outlives_the_process_that_started_it(data_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from honeychat.core.memory.redis_server import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1])); server.start()\n"
        "print(server.pid)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pid = int(child.stdout.strip())
    server = EmbeddedRedis(data_dir)
    try:
        assert alive(pid)
        server.start()
        assert server.reused and server.pid == pid
    finally:
        server.start()  # no-op if started; starts (or reuses) otherwise, so release can stop it
        assert server.release_sync()
    assert not alive(pid)


def test_concurrent_starts_share_one_server(data_dir: Path) -> None:
    handles = [EmbeddedRedis(data_dir) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda h: h.start(), handles))
    try:
        assert len({h.pid for h in handles}) == 1
        assert sorted(h.reused for h in handles) == [False, True, True, True]
    finally:
        results = [h.release_sync() for h in handles]
    assert results == [False, False, False, True]


def test_long_data_dir_gets_a_short_private_socket(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(data_dir)
    assert len(os.fsencode(data_dir / "redis" / "valkey.sock")) > UNIX_PATH_MAX
    assert len(os.fsencode(server.socket_path)) <= UNIX_PATH_MAX
    assert EmbeddedRedis(data_dir).socket_path == server.socket_path  # found by every process
    assert EmbeddedRedis(tmp_path / "other").socket_path != server.socket_path
    server.start()
    try:
        assert server.ping()
        mode = stat.S_IMODE(server.socket_path.parent.stat().st_mode)
        assert mode == 0o700
        assert server.pidfile.parent == data_dir.resolve() / "redis"
    finally:
        assert server.release_sync()
    assert not server.socket_path.exists()


def test_stale_socket_and_pidfile_are_replaced(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir)
    server.dir.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(server.socket_path))  # leaves a socket file nobody listens on
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    server.pidfile.write_text(f"{gone.pid}\n")

    server.start()
    try:
        assert not server.reused
        assert server.pid not in (None, gone.pid)
        assert server.ping()
    finally:
        assert server.release_sync()


async def test_connect_redis_runs_the_embedded_server(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, redis_url=None)
    connection = await connect_redis(settings)
    assert connection.server is not None
    pid = connection.server.pid
    store = RedisHotStore(connection.client, prefix="hc", buffer_size=5, ttl_seconds=60)
    message = await store.append(ALICE, Role.USER, "hello", utc_now())
    assert message.seq == 1
    names = {c["name"] for c in await connection.client.client_list()}
    assert connection.server.client_name in names

    await connection.close()
    await connection.close()  # idempotent
    assert pid is not None and not alive(pid)


async def test_connect_redis_uses_redis_url(embedded_redis: EmbeddedRedis, tmp_path: Path) -> None:
    url = f"unix://{embedded_redis.socket_path}?db=3"
    connection = await connect_redis(Settings(data_dir=tmp_path / "unused", redis_url=url))
    assert connection.server is None
    store = RedisHotStore(connection.client, prefix="hc", buffer_size=5, ttl_seconds=60)
    await store.append(ALICE, Role.USER, "over the url", utc_now())
    info = await connection.client.client_info()
    assert int(info["db"]) == 3
    assert info["name"] == f"honeychat-{os.getpid()}"
    await connection.close()
    assert not (tmp_path / "unused").exists()  # no embedded server was started

    with plain_client(embedded_redis) as check:
        check.select(3)
        assert check.llen(store.key(ALICE, "buf")) == 1


def _refused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_redis_url_fails_on_use_not_on_connect(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_refused_port()}/0"
    connection = await connect_redis(Settings(data_dir=tmp_path, redis_url=url), socket_timeout=1)
    store = RedisHotStore(connection.client, prefix="hc", buffer_size=5, ttl_seconds=60)
    with pytest.raises(StoreUnavailable) as caught:
        await store.append(ALICE, Role.USER, "hi", utc_now())
    assert caught.value.layer == "hot"
    assert "hot memory unavailable" in str(caught.value)
    await connection.close()


async def test_malformed_redis_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        await connect_redis(Settings(data_dir=tmp_path, redis_url="http://127.0.0.1:6379"))


async def test_embedded_start_failure_is_store_unavailable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(StoreUnavailable) as caught:
        await connect_redis(Settings(data_dir=not_a_dir, redis_url=None))
    assert caught.value.layer == "hot"
