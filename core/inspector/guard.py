"""What protects the inspector's HTTP surface: Host check, security headers, token throttling.

* Without ``INSPECTOR_TOKEN`` the inspector binds to loopback only, but a
  browser page can still reach it through DNS rebinding (``evil.example``
  resolving to 127.0.0.1). So without a token, a request whose ``Host`` is
  not a loopback name or address, nor listed in ``INSPECTOR_ALLOWED_HOSTS``
  (for a reverse proxy), is refused with ``421``.
* Every response carries headers that stop framing (the Clear dialog cannot
  be clickjacked), MIME sniffing, referrer leaks and foreign scripts.
* Wrong tokens are logged (client address only, never the token) and a
  client that keeps sending them gets ``429`` until its window passes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from honeychat.core.inspector.server import is_loopback

log = logging.getLogger(__name__)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8000`` -> ``::1``), lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    """ASGI middleware: refuses foreign ``Host`` headers without a token; adds security headers."""

    def __init__(self, app: ASGIApp, *, token_set: bool, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token_set = token_set
        self.allowed_hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request with this ``Host`` header may be served."""
        if self.token_set:
            return True
        name = host_name(host_header)
        return is_loopback(name) or name in self.allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not self.host_allowed(host):
            log.warning(
                "inspector refused a request for Host %r (DNS rebinding?); "
                "list it in INSPECTOR_ALLOWED_HOSTS if it is your proxy",
                host[:100],
            )
            body = json.dumps(
                {
                    "error": "host_not_allowed",
                    "detail": "this inspector only answers requests addressed to localhost",
                }
            ).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 421,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison that reveals neither where nor whether the lengths differ."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


class AuthThrottle:
    """Counts failed authentications per client; too many in ``window`` seconds locks it out."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def _current(self, client: str) -> tuple[float, int]:
        started, count = self._failures.get(client, (0.0, 0))
        if self._clock() - started >= self.window:
            return self._clock(), 0
        return started, count

    def blocked(self, client: str) -> bool:
        """Whether ``client`` used up its failures for this window."""
        return self._current(client)[1] >= self.max_failures

    def failed(self, client: str, path: str) -> None:
        """Record (and log) one failed authentication from ``client``."""
        started, count = self._current(client)
        count += 1
        self._failures[client] = (started, count)
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
        if count <= self.max_failures:
            log.warning("inspector: wrong or missing token from %s for %s", client, path)
        if count == self.max_failures:
            log.warning(
                "inspector: %s sent %d wrong tokens; refusing it for %gs",
                client,
                count,
                self.window,
            )
