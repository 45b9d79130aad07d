"""Plugins load from entry points and a directory; broken ones are reported and skipped."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from honeychat.core.plugins import PluginHost
from honeychat.testing import BotFactory, send


def plugin_file(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text("from honeychat import hookimpl\n\n" + body)


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    return directory


def test_builtins_load_from_entry_points() -> None:
    host = PluginHost()
    host.load()
    assert host.info["memory"].source == "built-in"
    assert host.info["commands"].source == "built-in"
    assert "honeychat_memory_context" in host.info["memory"].hooks
    assert host.problems == []


def test_disabled_plugin_is_not_loaded() -> None:
    host = PluginHost()
    host.load(disabled=["memory"])
    assert "memory" not in host.info and "commands" in host.info


def test_file_plugins_and_their_problems(plugins_dir: Path) -> None:
    plugin_file(
        plugins_dir, "greeter", "@hookimpl\ndef honeychat_prompt_sections(turn):\n    return 'hi'\n"
    )
    plugin_file(plugins_dir, "broken", "raise RuntimeError('boom at import')\n")
    plugin_file(
        plugins_dir, "typo", "@hookimpl\ndef honeychat_prompt_sections(trun):\n    return 'x'\n"
    )
    plugin_file(plugins_dir, "unknown", "def honeychat_prompt_section(turn):\n    return 'x'\n")
    plugin_file(
        plugins_dir, "memory", "@hookimpl\ndef honeychat_prompt_sections(turn):\n    return 'x'\n"
    )
    host = PluginHost()
    host.load(plugins_dir=plugins_dir)
    assert host.info["greeter"].source == "file"
    problems = {p.name: p.message for p in host.problems}
    assert set(problems) == {"broken", "typo", "unknown", "memory"}
    assert "boom at import" in problems["broken"]
    assert "trun" in problems["typo"]
    assert "honeychat_prompt_section" in problems["unknown"]
    assert "already loaded" in problems["memory"]
    assert host.info["memory"].source == "built-in"


async def test_a_raising_plugin_does_not_stop_the_others(plugins_dir: Path) -> None:
    plugin_file(
        plugins_dir,
        "a_fails",
        "@hookimpl\ndef honeychat_prompt_sections(turn):\n    raise ValueError('nope')\n",
    )
    plugin_file(
        plugins_dir,
        "b_works",
        "@hookimpl\nasync def honeychat_prompt_sections(turn):\n    return 'fine'\n",
    )
    host = PluginHost()
    host.load(plugins_dir=plugins_dir, disabled=["memory", "commands"])
    assert await host.call("honeychat_prompt_sections", turn=None) == ["fine"]
    with pytest.raises(ValueError):
        await host.call("honeychat_prompt_sections", turn=None, strict=True)


# Installed distributions, as importlib.metadata sees them: a *.dist-info directory with
# entry_points.txt on sys.path, next to the plugin modules it names.


def install_dist(
    site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[honeychat]\n{lines}\n")
    for module, body in modules.items():
        (site / f"{module}.py").write_text("from honeychat import hookimpl\n\n" + body)


GOOD = "@hookimpl\ndef honeychat_prompt_sections(turn):\n    return 'from an installed plugin'\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for fake installed distributions; their modules are unloaded after."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith("hcdemo_"):
            del sys.modules[name]


def test_installed_plugins_and_their_problems(site: Path) -> None:
    install_dist(
        site,
        "hcdemo-plugins",
        {
            "good": "hcdemo_good",
            "ghost": "hcdemo_good:Missing",
            "broken": "hcdemo_broken",
            "nomodule": "hcdemo_nowhere:Plugin",
            "twin": "hcdemo_twin_a",
            "same_again": "hcdemo_good",
        },
        {
            "hcdemo_good": GOOD,
            "hcdemo_twin_a": GOOD,
            "hcdemo_broken": "import hcdemo_not_installed\n",
        },
    )
    install_dist(site, "hcdemo-other", {"twin": "hcdemo_twin_b"}, {"hcdemo_twin_b": GOOD})
    host = PluginHost()
    host.load()
    assert host.info["good"].source == "entry point"
    assert host.info["good"].version == "1.2.3"
    assert {"memory", "commands", "quota", "clock", "good", "twin"} <= set(host.info)
    problems = {p.name: str(p) for p in host.problems}
    assert sorted(problems) == ["broken", "ghost", "nomodule", "same_again", "twin"], problems
    assert len(host.problems) == 5, "one message per bad plugin"
    assert problems["ghost"] == (
        "plugin 'ghost': entry point 'ghost = hcdemo_good:Missing' names 'Missing', "
        "which module hcdemo_good does not define"
    )
    assert "failed to import hcdemo_broken" in problems["broken"]
    assert "No module named 'hcdemo_not_installed'" in problems["broken"]
    assert "No module named 'hcdemo_nowhere'" in problems["nomodule"]
    assert "already loaded (entry point hcdemo_twin_" in problems["twin"]
    assert "skipped the entry point one (hcdemo_twin_" in problems["twin"]
    assert "Rename one of them" in problems["twin"]
    assert problems["same_again"] == (
        "plugin 'same_again': hcdemo_good is already loaded as plugin 'good'; "
        "skipped the second registration"
    )


def test_config_of_an_installed_plugin_is_validated(site: Path) -> None:
    body = (
        "from pydantic import BaseModel, Field\n\n"
        "class Config(BaseModel):\n    greeting: str\n    times: int = Field(default=1, ge=1)\n\n"
        "config_model = Config\n\n" + GOOD
    )
    install_dist(
        site, "hcdemo-configured", {"configured": "hcdemo_configured"}, {"hcdemo_configured": body}
    )
    host = PluginHost({"configured": {"times": 0}})
    host.load()
    [problem] = host.problems
    assert str(problem).startswith(
        "plugin 'configured': invalid config in PLUGIN_CONFIG['configured']:"
    )
    assert "greeting: Field required" in problem.message
    assert "times: Input should be greater than or equal to 1 (got 0)" in problem.message
    assert "configured" not in host.info and "memory" in host.info

    host = PluginHost({"configured": {"greeting": "hi"}})
    host.load()
    assert host.problems == []
    assert host.info["configured"].config == "configured"
    assert host.config("configured").greeting == "hi"
    assert host.info["memory"].config == "none"
    assert host.info["quota"].config == "defaults"
    with pytest.raises(KeyError, match="has no config_model"):
        host.config("memory")


def test_config_for_an_unknown_plugin_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    host = PluginHost({"qouta": {"default_timezone": "UTC"}})
    host.load()
    assert host.problems == []
    assert any("section for 'qouta'" in r.getMessage() for r in caplog.records)


def test_misspelt_argument_message_names_the_hook_and_the_spec(plugins_dir: Path) -> None:
    plugin_file(
        plugins_dir,
        "typo",
        "@hookimpl\ndef honeychat_persist(conversation, rol, text):\n    pass\n",
    )
    host = PluginHost()
    host.load(plugins_dir=plugins_dir)
    [problem] = host.problems
    assert str(problem) == (
        "plugin 'typo': honeychat_persist(conversation, rol, text) asks for argument(s) rol "
        "that the hook does not have; it takes (conversation, role, text, turn) (misspelt?)"
    )


async def test_the_bot_starts_with_the_good_plugins(
    bot_factory: BotFactory, plugins_dir: Path, site: Path
) -> None:
    install_dist(
        site,
        "hcdemo-mixed",
        {"ghost": "hcdemo_mixed:Nope", "good": "hcdemo_mixed"},
        {"hcdemo_mixed": GOOD},
    )
    plugin_file(plugins_dir, "broken", "raise RuntimeError('boom at import')\n")
    plugin_file(plugins_dir, "typo", "@hookimpl\ndef honeychat_ingest(trun):\n    pass\n")
    bot = await bot_factory(plugins_dir=plugins_dir, plugin_config={"quota": {"message": "{oops}"}})
    assert sorted(p.name for p in bot.plugins.problems) == ["broken", "ghost", "quota", "typo"]
    channel = await send(bot, "hello")
    assert channel.last_text == "I hear you: hello"
    assert "from an installed plugin" in bot_factory.last_system_prompt()


def test_an_environment_config_model_reads_variables_and_its_section_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The built-in adapters' settings: env names as before, PLUGIN_CONFIG on top, secrets masked."""
    from honeychat.adapters.discord.settings import DiscordSettings
    from honeychat.core.redact import redact

    monkeypatch.setenv("DISCORD_BOT_TOKEN", "planted-discord-token")
    monkeypatch.setenv("DISCORD_ALLOWED_CHANNELS", "11, 22")
    monkeypatch.setenv("DISCORD_API_BASE", "http://from-env.invalid/api/v10")
    host = PluginHost({"discord": {"discord_api_base": "http://from-section.invalid/api/v10"}})
    host.load()
    assert host.problems == []
    config = host.config("discord")
    assert isinstance(config, DiscordSettings)
    assert config.discord_bot_token == "planted-discord-token"
    assert config.discord_allowed_channels == ["11", "22"]
    assert config.discord_api_base == "http://from-section.invalid/api/v10"
    assert redact("token planted-discord-token leaked") == "token *** leaked"
