"""Settings read from the environment: the base of core ``Settings`` and of plugins' configs.

A model derived from :class:`EnvironmentSettings` reads each field from, highest
first: keyword arguments, the environment variable of the field's name
upper-cased (and a ``.env`` file in the working directory), the YAML file named
by ``HONEYCHAT_CONFIG`` (keys are the lower-case field names), then its default.

Core ``Settings`` is one; each built-in adapter's ``config_model`` (for example
``TelegramSettings`` with ``TELEGRAM_BOT_TOKEN``) is another, so a plugin's
settings live next to the plugin and are read the same way. A plugin whose
``config_model`` derives from it gets its ``PLUGIN_CONFIG`` section as the
keyword arguments (see :mod:`honeychat.core.plugins`).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def split_commas(value: Any) -> Any:
    """``"a, b"`` or a JSON list ``'["a", "b"]'`` as a list of strings; other values unchanged."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]
"""A list setting written as comma-separated values (or a JSON list) in the environment."""


class EnvironmentSettings(BaseSettings):
    """Fields read from keyword arguments, the environment, ``.env`` and ``HONEYCHAT_CONFIG``."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("HONEYCHAT_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)
