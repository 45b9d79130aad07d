"""Example plugin ``moderation``: a blocklist that refuses in character and records nothing.

Not enabled by default. To use it, copy this file into your ``PLUGINS_DIR``
(the file name is the plugin's name) and configure the words::

    PLUGINS_DIR=./my-plugins
    PLUGIN_CONFIG='{"moderation": {"blocklist": ["password", "credit card"]}}'

Input: ``honeychat_ingest`` returns a refusal when the user's message
contains a blocked term, which ends the turn before anything is stored or
sent to the LLM. Output: ``honeychat_transform_reply`` replaces a reply that
contains a blocked term with the refusal; the plugin turns streaming off
(``turn.extras["no_stream"]``) so the raw reply is never shown while it
streams, and the blocked reply is never stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from honeychat import Reply, hookimpl

if TYPE_CHECKING:
    from honeychat.core.turn import Turn

NAME = "moderation"


class Config(BaseModel):
    """The blocklist and the words the character uses to decline."""

    blocklist: list[str] = Field(default_factory=list)
    """Words or phrases, matched case-insensitively as whole words."""
    refusal: str = "I'd rather not talk about that. Could we talk about something else?"
    """What the character says instead, in the first person."""


config_model = Config


def _pattern(config: Config) -> re.Pattern[str] | None:
    terms = [re.escape(term.strip()) for term in config.blocklist if term.strip()]
    if not terms:
        return None
    return re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE)


@hookimpl(tryfirst=True)
def honeychat_ingest(turn: Turn) -> Reply | None:
    """Refuse blocked input before it is stored; make sure replies are checked before shown."""
    pattern = _pattern(turn.bot.plugins.config(NAME))
    if pattern is None:
        return None
    if pattern.search(turn.text):
        return Reply(turn.bot.plugins.config(NAME).refusal)
    turn.extras["no_stream"] = True  # the reply must be checked before anyone sees it
    return None


@hookimpl
def honeychat_transform_reply(turn: Turn) -> None:
    """Replace a reply that contains a blocked term with the refusal."""
    config: Config = turn.bot.plugins.config(NAME)
    pattern = _pattern(config)
    if pattern is not None and pattern.search(turn.reply_text):
        turn.reply_text = config.refusal
