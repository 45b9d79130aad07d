"""``honeychat new plugin NAME``: write a ready-to-install plugin package.

The package has a pyproject with the ``honeychat`` entry point, a plugin
module with one hook and a config model, a test that uses honeychat's test
kit, and a README. Its test passes as generated.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME_RULE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ScaffoldError(ValueError):
    """The plugin cannot be scaffolded (bad name, target exists)."""


PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A honeychat plugin: {name}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["honeychat>={honeychat_version}"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.24"]

# honeychat finds plugins through this entry-point group; the name on the left
# is the plugin's name (for DISABLED_PLUGINS and PLUGIN_CONFIG).
[project.entry-points.honeychat]
{name} = "{module}"

[tool.setuptools]
packages = ["{module}"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
testpaths = ["tests"]
"""

MODULE = '''\
"""honeychat plugin ``{name}``: adds a note to the character's system prompt.

Configure it with ``PLUGIN_CONFIG='{{"{name}": {{"note": "..."}}}}'`` (or the
``plugin_config`` section of the YAML file named by ``HONEYCHAT_CONFIG``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from honeychat import hookimpl

if TYPE_CHECKING:
    from honeychat.core.turn import Turn

NAME = "{name}"


class Config(BaseModel):
    """This plugin's settings, validated when honeychat loads it."""

    note: str = Field(default="The user is trying out the {name} plugin.", min_length=1)
    """A sentence added to the system prompt of every turn."""


# honeychat validates PLUGIN_CONFIG["{name}"] against this model at load time.
config_model = Config


@hookimpl
def honeychat_prompt_sections(turn: Turn) -> str:
    """Add the configured note to the system prompt."""
    config: Config = turn.bot.plugins.config(NAME)
    return config.note
'''

TEST = '''\
"""Tests of the {name} plugin with honeychat's test kit.

``bot_factory`` (from honeychat's pytest plugin, loaded automatically) builds
a bot with real embedded stores and a fake OpenAI-compatible LLM on
127.0.0.1; ``send`` talks to it as a user.
"""

from honeychat.testing import BotFactory, send


async def test_the_plugin_is_installed(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    assert bot.plugins.info["{name}"].source == "entry point"
    assert "honeychat_prompt_sections" in bot.plugins.info["{name}"].hooks


async def test_the_note_reaches_the_prompt(bot_factory: BotFactory) -> None:
    bot = await bot_factory(plugin_config={{"{name}": {{"note": "The user loves kites."}}}})
    channel = await send(bot, "hello")
    assert channel.last_text == "I hear you: hello"  # the fake LLM's default answer
    system_prompt = bot_factory.llm.chat_requests[-1].messages[0]["content"]
    assert "The user loves kites." in system_prompt


async def test_an_invalid_config_is_reported_and_the_bot_still_runs(
    bot_factory: BotFactory,
) -> None:
    bot = await bot_factory(plugin_config={{"{name}": {{"note": ""}}}})
    [problem] = [p for p in bot.plugins.problems if p.name == "{name}"]
    assert "note" in problem.message
    assert (await send(bot, "hello")).last_text == "I hear you: hello"
'''

README = """\
# {dist}

A [honeychat](https://github.com/honeychat/honeychat) plugin: it adds a note to the
character's system prompt on every turn.

## Install

```bash
pip install -e .
honeychat plugins list      # {name} appears with source "entry point"
```

## Configure

```bash
export PLUGIN_CONFIG='{{"{name}": {{"note": "The user prefers short answers."}}}}'
```

Disable it without uninstalling: `DISABLED_PLUGINS={name}`.

## Test

```bash
pip install -e '.[test]'
python -m pytest
```

The tests use honeychat's test kit: `bot_factory` builds a bot with real embedded
stores and a fake LLM server on 127.0.0.1, and `send` talks to it as a user.
"""


def scaffold_plugin(name: str, parent: Path, *, honeychat_version: str = "0.1") -> Path:
    """Write the package ``honeychat-NAME`` under ``parent``; returns its directory.

    Raises :class:`ScaffoldError` for an invalid name or an existing target
    (nothing is overwritten).
    """
    if not NAME_RULE.match(name):
        raise ScaffoldError(
            f"invalid plugin name '{name}': use 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter"
        )
    plugin = name.replace("-", "_")
    module = f"honeychat_{plugin}"
    dist = f"honeychat-{name}"
    root = parent / dist
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or --dir")
    values = {
        "name": plugin,
        "module": module,
        "dist": dist,
        "honeychat_version": honeychat_version,
    }
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / module / "__init__.py": MODULE,
        root / "tests" / f"test_{plugin}.py": TEST,
        root / "README.md": README,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
