"""honeychat: AI companion bots that remember.

The public surface a plugin author needs is importable from here::

    from honeychat import hookimpl, IncomingMessage

Everything heavy (Chroma, embeddings, platform SDKs) loads lazily, so importing
this package is cheap.
"""

from honeychat.core.hookspecs import hookimpl, hookspec
from honeychat.core.types import (
    Attachment,
    Choice,
    ConversationKey,
    IncomingMessage,
    Reply,
    Role,
    StoredMessage,
)

__version__ = "0.1.0"

__all__ = [
    "Attachment",
    "Choice",
    "ConversationKey",
    "IncomingMessage",
    "Reply",
    "Role",
    "StoredMessage",
    "__version__",
    "hookimpl",
    "hookspec",
]
