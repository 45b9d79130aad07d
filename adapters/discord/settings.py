"""The Discord adapter's settings (``DISCORD_*``), its plugin's ``config_model``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from honeychat.core.env_settings import CommaList, EnvironmentSettings, split_commas


class DiscordSettings(EnvironmentSettings):
    """What the Discord adapter reads; each field is the variable of its name, upper-cased."""

    discord_bot_token: str | None = None
    """The bot token from the Developer Portal; the adapter starts only when it is set."""
    discord_api_base: str | None = None
    """Another REST base than ``https://discord.com/api/v10`` (proxies, tests)."""
    discord_gateway_url: str | None = None
    """Another gateway than ``wss://gateway.discord.gg`` (proxies, tests)."""
    discord_allowed_channels: CommaList = Field(default_factory=list)
    """Channel ids the bot answers in (comma-separated); empty means every channel."""
    discord_shard_count: int | None = Field(default=None, ge=1)
    """Shards of the whole bot, over every process; unset: the count Discord recommends,
    every shard in this process."""
    discord_shard_ids: Annotated[list[int], NoDecode, BeforeValidator(split_commas)] = Field(
        default_factory=list
    )
    """The shards this process runs (comma-separated, each below ``DISCORD_SHARD_COUNT``);
    empty: all of them."""

    @field_validator("discord_shard_ids")
    @classmethod
    def _shards_fit_the_count(cls, ids: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("discord_shard_count")
        if not ids:
            return ids
        if count is None:
            raise ValueError("needs DISCORD_SHARD_COUNT (the number of shards over all processes)")
        outside = [i for i in ids if not 0 <= i < count]
        if outside:
            raise ValueError(
                f"{outside} not below DISCORD_SHARD_COUNT ({count}); shard ids count from 0"
            )
        if len(set(ids)) != len(ids):
            raise ValueError("names a shard twice")
        return ids
