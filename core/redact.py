"""One place that removes credentials from text before it is shown or logged.

:func:`redact` hides URL passwords (``redis://:pw@host`` becomes
``redis://:***@host``), bearer tokens, well-known API-key shapes and every
secret value the settings hold. Readiness, doctor, exception messages and
every log line (through :class:`RedactingFilter`) go through it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 6
"""Shorter configured values are not masked on their own (they would mask ordinary words)."""

_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@'\"<>]*)@")
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),  # OpenAI / OpenRouter keys
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),  # Slack tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),  # Slack app-level tokens
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot tokens
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)=)[^\s&'\"]+"),
)

_known: set[str] = set()
_known_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values wherever they appear from now on (tokens, keys, passwords)."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= _MIN_SECRET)


def _hide_userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("userinfo").partition(":")
    shown = f"{user}:{MASK}" if sep else MASK
    return f"{match.group('scheme')}{shown}@"


def redact(text: object) -> str:
    """``text`` as a string with every credential replaced by ``***``."""
    result = _URL_USERINFO.sub(_hide_userinfo, str(text))
    for pattern in _PATTERNS:
        result = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, result)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        result = result.replace(secret, MASK)
    return result


def settings_secrets(settings: object) -> list[str]:
    """The secret values a settings object holds: tokens, keys, and passwords inside URLs."""
    from urllib.parse import urlsplit

    from pydantic import SecretStr

    found: list[str] = []
    for name in type(settings).model_fields:  # type: ignore[attr-defined]
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str) or not value:
            continue
        if name.endswith(("_token", "_key", "_secret", "_password")):
            found.append(value)
        elif name.endswith("_url") and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.append(password)
    return found


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add :class:`RedactingFilter` to ``handlers`` (default: the root logger's), once each."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
