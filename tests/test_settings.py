"""Settings come from the environment and an optional YAML file, env winning."""

from pathlib import Path

import pytest

from honeychat.core.settings import Settings, default_data_dir


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in (
        "REDIS_URL",
        "CHROMA_URL",
        "OPENROUTER_API_KEY",
        "LLM_BASE_URL",
        "HONEYCHAT_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.hot_buffer_size == 20 and s.hot_buffer_ttl_days == 7 and s.summary_window == 10
    assert s.retrieval_k == 16
    assert s.llm_endpoint is None
    assert s.summary_window_messages == 20


def test_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "honeychat"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "honeychat"


def test_openrouter_is_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    s = Settings()
    assert s.llm_endpoint == "https://openrouter.ai/api/v1"
    assert s.is_openrouter and s.llm_key == "sk-or-test"


def test_other_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:11434/v1/")
    monkeypatch.setenv("LLM_API_KEY", "ollama")
    s = Settings()
    assert s.llm_endpoint == "http://127.0.0.1:11434/v1"
    assert not s.is_openrouter and s.llm_key == "ollama"


def test_yaml_file_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "honeychat.yaml"
    config.write_text(
        "hot_buffer_size: 40\nretrieval_k: 5\ntiers:\n  free:\n    model: a/b\n    daily_message_limit: 3\n"
    )
    monkeypatch.setenv("HONEYCHAT_CONFIG", str(config))
    monkeypatch.setenv("RETRIEVAL_K", "7")
    s = Settings()
    assert s.hot_buffer_size == 40
    assert s.retrieval_k == 7
    assert s.tiers["free"].model == "a/b" and s.tiers["free"].daily_message_limit == 3


def test_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLED_PLUGINS", "memory, quota")
    assert Settings().disabled_plugins == ["memory", "quota"]


def test_tier_lookup() -> None:
    s = Settings(user_tiers={"telegram:42": "premium"})
    assert s.tier_for("telegram", "42")[0] == "premium"
    assert s.tier_for("telegram", "43")[0] == "free"
