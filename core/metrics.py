"""Prometheus metrics of one honeychat process.

Every collector lives in :data:`REGISTRY`, a :class:`~prometheus_client.CollectorRegistry`
of our own (not prometheus-client's global default), so libraries that
register collectors globally never show up in, or clash with, honeychat's
``/metrics``. There is one registry per *process*: every bot of the process
counts into it. ``honeychat serve`` exposes it at ``/metrics``; ``honeychat run
--ops-port N`` exposes the bot process's own at ``http://HOST:N/metrics``.

Names and labels::

    honeychat_messages_handled_total{platform}   turns started (messages addressed to the bot)
    honeychat_turn_overhead_seconds               turn wall time minus the LLM call
    honeychat_llm_request_seconds{model}          LLM call wall time (streaming included)
    honeychat_llm_errors_total{model}             LLM calls that failed after retries
    honeychat_summaries_written_total             summaries stored in the cold layer
    honeychat_windows_kept_verbatim_total         windows stored verbatim after every summary failed
    honeychat_summary_failures_total              failed attempts at summarizing a window
    honeychat_summary_lag_seconds                 from a window's last message to its document
    honeychat_summary_backlog                     conversations with a complete window waiting
    honeychat_summary_oldest_wait_seconds         how long the oldest of them has waited
    honeychat_retrieval_searches_total            searches over summaries
    honeychat_retrieval_hits_total                summaries returned by those searches
    honeychat_store_errors_total{layer}           memory-layer failures (hot, cold)
    honeychat_spooled_messages_total              messages kept in process while Redis was down
    honeychat_spooled_replayed_total              of those, written to Redis once it was back
    honeychat_spooled_dropped_total               of those, dropped because the spool was full
    honeychat_spool_size                          messages waiting in the spool now
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "METRICS", "REGISTRY", "Metrics", "render"]

# Turn overhead is our own work (stores, prompt): milliseconds, not seconds.
_OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)


class Metrics:
    """The collectors honeychat updates, all registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages_handled = Counter(
            "honeychat_messages_handled",
            "Messages addressed to the bot that started a turn, by platform.",
            ["platform"],
            registry=registry,
        )
        self.turn_overhead = Histogram(
            "honeychat_turn_overhead_seconds",
            "Wall time of a turn excluding the LLM call (memory reads and writes, prompt, delivery).",
            buckets=_OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.llm_latency = Histogram(
            "honeychat_llm_request_seconds",
            "Wall time of one LLM call of a turn, retries and streaming included, by model.",
            ["model"],
            buckets=_LLM_BUCKETS,
            registry=registry,
        )
        self.llm_errors = Counter(
            "honeychat_llm_errors",
            "LLM calls of a turn that failed after every retry and fallback, by model.",
            ["model"],
            registry=registry,
        )
        self.summaries_written = Counter(
            "honeychat_summaries_written",
            "Window summaries stored in the cold memory layer.",
            registry=registry,
        )
        self.windows_verbatim = Counter(
            "honeychat_windows_kept_verbatim",
            "Windows stored as their verbatim messages after every attempt to summarize failed.",
            registry=registry,
        )
        self.summary_failures = Counter(
            "honeychat_summary_failures",
            "Failed attempts at summarizing a window (errors and empty answers).",
            registry=registry,
        )
        self.summary_lag = Histogram(
            "honeychat_summary_lag_seconds",
            "Seconds from a window's last message to its document in the cold layer.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.summary_backlog = Gauge(
            "honeychat_summary_backlog",
            "Conversations with a complete window not yet stored (as last read from Redis).",
            registry=registry,
        )
        self.summary_oldest_wait = Gauge(
            "honeychat_summary_oldest_wait_seconds",
            "How long the oldest waiting window has waited (as last read from Redis).",
            registry=registry,
        )
        self.retrieval_searches = Counter(
            "honeychat_retrieval_searches",
            "Semantic searches over summaries (chat turns, commands and the inspector).",
            registry=registry,
        )
        self.retrieval_hits = Counter(
            "honeychat_retrieval_hits",
            "Summaries returned by semantic searches.",
            registry=registry,
        )
        self.store_errors = Counter(
            "honeychat_store_errors",
            "Failures to reach a memory layer, by layer (hot: Redis, cold: Chroma).",
            ["layer"],
            registry=registry,
        )
        for layer in ("hot", "cold"):
            self.store_errors.labels(layer)
        self.spooled_messages = Counter(
            "honeychat_spooled_messages",
            "Messages kept in process memory because Redis could not take them.",
            registry=registry,
        )
        self.spooled_replayed = Counter(
            "honeychat_spooled_replayed",
            "Spooled messages written to Redis once it was back.",
            registry=registry,
        )
        self.spooled_dropped = Counter(
            "honeychat_spooled_dropped",
            "Spooled messages dropped (oldest first) because the spool was full.",
            registry=registry,
        )
        self.spool_size = Gauge(
            "honeychat_spool_size",
            "Messages waiting in this process for Redis to come back.",
            registry=registry,
        )


REGISTRY = CollectorRegistry(auto_describe=True)
"""This process's registry (see the module docstring)."""

METRICS = Metrics(REGISTRY)
"""This process's collectors."""


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
