"""Test kit shipped with honeychat: fakes of the outside world that speak real wire protocols.

Plugin authors import from here::

    from honeychat.testing import BotFactory, send

``bot_factory`` and ``fake_llm`` are pytest fixtures, available in any
project that has honeychat installed (honeychat registers its pytest plugin
through the ``pytest11`` entry point). Names are imported on first use, so
``honeychat.testing.fake_llm`` stays usable without pytest installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from honeychat.testing.channel import RecordingChannel
    from honeychat.testing.fake_llm import FakeLLM
    from honeychat.testing.pytest_plugin import BotFactory, memory_state, send
    from honeychat.testing.tools import tool_context

_EXPORTS = {
    "BotFactory": "honeychat.testing.pytest_plugin",
    "send": "honeychat.testing.pytest_plugin",
    "memory_state": "honeychat.testing.pytest_plugin",
    "FakeLLM": "honeychat.testing.fake_llm",
    "RecordingChannel": "honeychat.testing.channel",
    "tool_context": "honeychat.testing.tools",
}

__all__ = ["BotFactory", "FakeLLM", "RecordingChannel", "memory_state", "send", "tool_context"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'honeychat.testing' has no attribute {name!r}")
