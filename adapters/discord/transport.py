"""Point one discord.py client at another REST base and gateway (tests, proxies).

discord.py builds every REST URL from the class attribute ``Route.BASE``
(``https://discord.com/api/v10``) and opens the gateway at
``DiscordWebSocket.DEFAULT_GATEWAY`` (``wss://gateway.discord.gg/``). Changing
those class attributes would redirect every client in the process, so instead
the URLs are rewritten at the two places where this client's traffic leaves
discord.py:

* :class:`RedirectingHTTPClient` overrides ``HTTPClient.request`` (all bot REST
  calls, including login and command sync) and ``HTTPClient.ws_connect`` (the
  gateway, first connection and resumes);
* :class:`RedirectingWebhookAdapter` overrides ``AsyncWebhookAdapter.request``,
  which discord.py uses for interaction callbacks and followups. discord.py
  looks that adapter up in the ``async_context`` context variable, so
  :func:`install_webhook_redirect` sets it in the task that runs the client;
  the tasks discord.py spawns for events inherit it, other code does not.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import discord
import yarl
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

DISCORD_API_BASE = Route.BASE
"""discord.py's default REST base, versioned (``https://discord.com/api/v10``)."""


class UrlRewriter:
    """Rewrites discord.py's default REST and gateway URLs to configured ones."""

    def __init__(self, api_base: str | None, gateway_url: str | None) -> None:
        self.api_base = api_base.rstrip("/") if api_base else None
        self.gateway = yarl.URL(gateway_url) if gateway_url else None

    def rest(self, url: str) -> str:
        """The URL to use for a REST request discord.py built for ``Route.BASE``."""
        if self.api_base and url.startswith(DISCORD_API_BASE):
            return self.api_base + url[len(DISCORD_API_BASE) :]
        return url

    def gateway_url(self, url: str) -> str:
        """The URL to use for a gateway connection (keeps discord.py's query string).

        Only Discord's own gateway hosts are rewritten (the default one and the
        ``resume_gateway_url`` Discord hands out); a resume URL the configured
        gateway handed out is already correct.
        """
        parsed = yarl.URL(url)
        host = parsed.host or ""
        if self.gateway is None or not (host == "discord.gg" or host.endswith(".discord.gg")):
            return url
        return str(self.gateway.with_query(parsed.query))


class RedirectingHTTPClient(HTTPClient):
    """discord.py's HTTP client, sending REST and gateway traffic where configured."""

    def __init__(self, rewriter: UrlRewriter, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rewriter = rewriter

    async def request(self, route: Route, **kwargs: Any) -> Any:
        route.url = self.rewriter.rest(route.url)
        return await super().request(route, **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        return await super().ws_connect(self.rewriter.gateway_url(url), compress=compress)


class RedirectingWebhookAdapter(AsyncWebhookAdapter):
    """discord.py's webhook/interaction transport, sending REST traffic where configured."""

    def __init__(self, rewriter: UrlRewriter) -> None:
        super().__init__()
        self.rewriter = rewriter

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        route.url = self.rewriter.rest(route.url)
        return await super().request(route, session, **kwargs)


def install_webhook_redirect(rewriter: UrlRewriter) -> None:
    """Route interaction responses of the current task (and tasks it spawns) via ``rewriter``.

    Call it at the top of the task that runs the client; a no-op without an API base.
    """
    if rewriter.api_base:
        async_context.set(RedirectingWebhookAdapter(rewriter))


def redirect_client(client: discord.Client, rewriter: UrlRewriter) -> None:
    """Replace ``client.http`` with a :class:`RedirectingHTTPClient` (before it is used).

    Must run right after ``discord.Client.__init__`` and before anything (such
    as an ``app_commands.CommandTree``) keeps a reference to ``client.http``.
    """
    old = client.http
    http = RedirectingHTTPClient(
        rewriter,
        client.loop,
        old.connector if old.connector is not discord.utils.MISSING else None,
        proxy=old.proxy,
        proxy_auth=old.proxy_auth,
        unsync_clock=not old.use_clock,
        http_trace=old.http_trace,
        max_ratelimit_timeout=old.max_ratelimit_timeout,
    )
    client.http = http
    client._connection.http = http
