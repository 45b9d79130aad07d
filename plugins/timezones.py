"""Per-user time zones for plugins that care about the user's clock (quota, clock).

Each such plugin's config model extends :class:`UserTimeZones`, so the time
zones sit in that plugin's own ``PLUGIN_CONFIG`` section::

    PLUGIN_CONFIG='{"quota": {"default_timezone": "Europe/Paris",
                              "user_timezones": {"telegram:42": "America/New_York"}}}'
"""

from __future__ import annotations

import zoneinfo
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}' (use an IANA name like 'Europe/Paris')"
        ) from None


class UserTimeZones(BaseModel):
    """A default time zone and per-user overrides, keyed ``platform:user_id``."""

    default_timezone: str = "UTC"
    """IANA name of the time zone used for users without their own entry."""
    user_timezones: dict[str, str] = Field(default_factory=dict)
    """IANA time zone per user, keyed ``platform:user_id`` (e.g. ``telegram:42``)."""

    @field_validator("default_timezone")
    @classmethod
    def _valid_default(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("user_timezones")
    @classmethod
    def _valid_users(cls, value: dict[str, str]) -> dict[str, str]:
        for user, name in value.items():
            try:
                _zone(name)
            except ValueError as exc:
                raise ValueError(f"user '{user}': {exc}") from None
        return value

    def zone_for(self, platform: str, user_id: str) -> ZoneInfo:
        """The time zone of one user (their own entry, else the default)."""
        return _zone(self.user_timezones.get(f"{platform}:{user_id}", self.default_timezone))
