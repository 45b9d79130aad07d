"""The memory inspector: HTTP API, memory browser page and ops endpoints (``honeychat serve``)."""

from honeychat.core.inspector.app import create_app

__all__ = ["create_app"]
