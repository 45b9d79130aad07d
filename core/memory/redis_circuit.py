"""A circuit for Redis: after a command or a connect times out, stop trying for a moment.

A hung Redis (SIGSTOP, a partition) accepts connections and never answers,
so every command waits for the whole socket timeout. A turn makes several
(the user's character, the quota, the message itself...), so without this
each would wait in turn. :func:`add_circuit` makes the client's connections
share one :class:`~honeychat.core.deadlines.Circuit` per server: once a
timeout opens it, new connections fail at once with ``ConnectionError``
(which every caller already treats as "Redis is down") until the cooldown
passes. A timed-out connection is dropped by redis-py, so the next command
needs a new one and meets the circuit.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection

from honeychat.core.deadlines import Circuit

_circuits: dict[tuple[Any, ...], Circuit] = {}
_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _circuit(connection: AbstractConnection, cooldown: float) -> Circuit:
    where = (
        getattr(connection, "path", None),
        getattr(connection, "host", None),
        getattr(connection, "port", None),
    )
    circuit = _circuits.get(where)
    if circuit is None:
        circuit = _circuits[where] = Circuit(cooldown)
    return circuit


class _CircuitMixin:
    circuit_cooldown = 2.0

    async def connect(self) -> None:
        circuit = _circuit(self, self.circuit_cooldown)  # type: ignore[arg-type]
        if not circuit.allows():
            raise redis.ConnectionError("Redis timed out a moment ago; not trying again yet")
        try:
            await super().connect()  # type: ignore[misc]
        except redis.TimeoutError:
            circuit.trip()
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.TimeoutError:
            _circuit(self, self.circuit_cooldown).trip()  # type: ignore[arg-type]
            raise


def add_circuit(client: redis.asyncio.Redis, cooldown: float = 2.0) -> redis.asyncio.Redis:
    """Make ``client``'s future connections go through a circuit; returns ``client``."""
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _CircuitMixin):
        wrapped = _classes.get(base)
        if wrapped is None:
            wrapped = _classes[base] = type(
                f"Circuit{base.__name__}",
                (_CircuitMixin, base),
                {"circuit_cooldown": cooldown},
            )
        pool.connection_class = wrapped
    return client
