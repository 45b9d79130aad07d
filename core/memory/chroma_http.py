"""A Chroma HTTP client whose requests have a deadline.

``chromadb.HttpClient`` builds its ``httpx.Client`` with ``timeout=None`` and
offers no setting to change it, so a Chroma server that stops answering (a
partition, a SIGSTOPped process) would block the calling thread for ever,
starting with the tenant check the client makes while it is constructed.
:func:`timed_http_client` first checks the server's heartbeat with a
deadline (so construction does not start against a hung server), then sets
the timeout on the client's HTTP session. Callers still run it in a bounded
thread pool with its own deadline (:class:`~honeychat.core.deadlines.LayerGate`).
"""

from __future__ import annotations

import logging

import httpx
from chromadb.api import ClientAPI

log = logging.getLogger(__name__)


def request_timeout(seconds: float) -> httpx.Timeout:
    """The timeout of every request to Chroma: ``seconds``, connecting within at most 5 s."""
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def timed_http_client(host: str, port: int, *, ssl: bool, timeout: float) -> ClientAPI:
    """A Chroma client for the server at ``host:port`` whose every request ends within ``timeout``."""
    import chromadb

    scheme = "https" if ssl else "http"
    response = httpx.get(
        f"{scheme}://{host}:{port}/api/v2/heartbeat", timeout=request_timeout(timeout)
    )
    response.raise_for_status()
    client = chromadb.HttpClient(host=host, port=port, ssl=ssl)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = request_timeout(timeout)
    else:  # a future chromadb changed its internals: the thread pool's deadline still applies
        log.warning(
            "could not set a timeout on the Chroma HTTP client (chromadb internals changed)"
        )
    return client
