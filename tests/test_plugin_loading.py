"""Plugins load from entry points and a directory; broken ones are reported and skipped."""

from pathlib import Path

import pytest

from honeychat.core.plugins import PluginHost


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
