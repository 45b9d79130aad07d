"""One clear line for a configuration mistake: which variable, and what is wrong with it."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError
from pydantic_settings import SettingsError

from honeychat.core.redact import redact

_FIELD = re.compile(r'field "([^"]+)"')


def describe(exc: Exception) -> str | None:
    """The one-line message for a settings error, or ``None`` if ``exc`` is not one.

    Values are never echoed (they may be secrets); the position of a JSON
    error is, so the user can find it.
    """
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        return f"invalid setting {field}: {message}"
    if isinstance(exc, SettingsError):
        match = _FIELD.search(str(exc))
        field = match.group(1).upper() if match else "a setting"
        cause = exc.__cause__
        if isinstance(cause, json.JSONDecodeError):
            return (
                f"invalid setting {field}: not valid JSON ({cause.msg} at line {cause.lineno} "
                f"column {cause.colno})"
            )
        detail = f": {redact(cause)}" if cause is not None else ""
        return f"invalid setting {field}{detail}"
    return None
