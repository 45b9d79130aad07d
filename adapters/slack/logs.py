"""The logger handed to slack-bolt, so unverified request bodies never reach our logs.

slack-bolt's request verification logs the full body of a request whose
signature is wrong (at INFO): anyone who can reach the endpoint could write
what they like into the bot's log. Bolt takes a ``logger`` argument and
copies that logger's filters to the loggers of its middleware, so the
filter here applies to all of them without touching bolt's own code.
"""

from __future__ import annotations

import logging
import re

_BAD_SIGNATURE = re.compile(r"^Invalid request signature detected\b.*?timestamp: ([^,)]*)", re.S)


class UnverifiedBodyFilter(logging.Filter):
    """Rewrites bolt's bad-signature record without the signature and body it carries."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        match = _BAD_SIGNATURE.match(message)
        if match is not None:
            record.msg = (
                "Slack request with an invalid signature refused "
                f"(timestamp {match.group(1)[:20]!r}; its {len(message)}-character log line "
                "with the unverified body was dropped)"
            )
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def bolt_logger() -> logging.Logger:
    """The logger to pass to ``AsyncApp(logger=...)``."""
    logger = logging.getLogger("honeychat.adapters.slack.bolt")
    if not any(isinstance(f, UnverifiedBodyFilter) for f in logger.filters):
        logger.addFilter(UnverifiedBodyFilter())
    return logger
