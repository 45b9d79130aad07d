"""Nothing secret leaks, and the inspector only answers who it should.

Planted credentials must not appear in /readyz, doctor's output or any log
line; the token-less inspector refuses foreign Host headers (DNS
rebinding); every response carries the security headers; wrong tokens are
throttled and logged; slack-bolt's bad-signature log loses the forged body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from inspector_helpers import TOKEN, client, running_inspector

from honeychat.adapters.slack.adapter import EVENTS_PATH, SlackAdapter
from honeychat.core.doctor import run_doctor
from honeychat.core.inspector.guard import host_name, tokens_match
from honeychat.core.redact import redact
from honeychat.testing.fake_slack import FakeSlack, deliver, event_callback
from honeychat.testing.pytest_plugin import BotFactory

REDIS_PASSWORD = "hunter2-redis-Pa55word"
CHROMA_PASSWORD = "s3cret-chroma-Pa55"
LLM_KEY = "sk-or-v1-plantedkey0123456789"


def test_redact_hides_url_passwords_tokens_and_keys() -> None:
    text = (
        f"redis://:{REDIS_PASSWORD}@10.0.0.5:6379/0 and http://admin:{CHROMA_PASSWORD}@h:8000 "
        f"Authorization: Bearer abcdef123456 key {LLM_KEY} xoxb-1234-5678-abcdefgh ?api_key=zzz123"
    )
    cleaned = redact(text)
    for secret in (REDIS_PASSWORD, CHROMA_PASSWORD, "abcdef123456", LLM_KEY, "xoxb-1234", "zzz123"):
        assert secret not in cleaned
    assert "redis://:***@10.0.0.5:6379/0" in cleaned
    assert "http://admin:***@h:8000" in cleaned


async def test_planted_secrets_never_reach_readyz_doctor_or_logs(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    # Redis has no password configured, so AUTH fails: the error path is exercised too.
    overrides: dict[str, Any] = {
        "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/2",
        "chroma_url": f"http://admin:{CHROMA_PASSWORD}@127.0.0.1:9/",
        "chroma_timeout": 1.0,
        "llm_api_key": LLM_KEY,
    }
    bot = await bot_factory(**overrides)
    async with running_inspector(bot, token=None) as base:
        async with client(base, token=None) as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    await run_doctor(bot_factory.settings(**overrides))
    printed = capsys.readouterr()
    logged = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])
    for where, text in (("/readyz", ready.text), ("doctor", printed.out + printed.err)):
        for secret in (REDIS_PASSWORD, CHROMA_PASSWORD, LLM_KEY):
            assert secret not in text, (where, secret)
    assert "redis://:***@127.0.0.1" in ready.text
    # Log records as handlers see them (the redaction filter is on the handlers).
    from honeychat.core.redact import RedactingFilter

    redacting = RedactingFilter()
    for record in caplog.records:
        redacting.filter(record)
        for secret in (REDIS_PASSWORD, CHROMA_PASSWORD, LLM_KEY):
            assert secret not in record.getMessage()
            assert secret not in (record.exc_text or "")
    assert logged  # something was logged about the failing stores


async def test_the_tokenless_inspector_refuses_foreign_hosts(bot_factory: BotFactory) -> None:
    bot = await bot_factory(inspector_allowed_hosts=["inspector.internal"])
    async with running_inspector(bot, token=None) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            evil = await http.get("/api/characters", headers={"Host": "evil.example"})
            evil_delete = await http.delete(
                "/api/conversations/test/alice/luna", headers={"Host": "evil.example:8000"}
            )
            local = await http.get("/api/characters")
            named = await http.get("/api/characters", headers={"Host": "localhost:8000"})
            proxied = await http.get("/api/characters", headers={"Host": "inspector.internal"})
    assert (evil.status_code, evil_delete.status_code) == (421, 421)
    assert evil.json()["error"] == "host_not_allowed"
    assert (local.status_code, named.status_code, proxied.status_code) == (200, 200, 200)
    assert host_name("[::1]:8000") == "::1" and host_name("LOCALHOST") == "localhost"


async def test_every_response_carries_security_headers(bot_factory: BotFactory) -> None:
    bot = await bot_factory()
    async with running_inspector(bot, token=None) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            responses = [
                await http.get("/"),
                await http.get("/static/app.js"),
                await http.get("/api/characters"),
                await http.get("/no/such/page"),
                await http.get("/healthz"),
                await http.get("/api/characters", headers={"Host": "evil.example"}),
            ]
    for response in responses:
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], response.url
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


async def test_wrong_tokens_are_logged_then_throttled(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bot = await bot_factory(inspector_token=TOKEN)
    async with running_inspector(bot) as base:
        async with client(base) as right:
            assert (await right.get("/api/characters")).status_code == 200
        async with client(base, token="wrong-" + TOKEN) as wrong, client(base) as right:
            statuses = [(await wrong.get("/api/characters")).status_code for _ in range(12)]
            # The address is locked out for the window, whatever token it sends next.
            assert (await right.get("/api/characters")).status_code == 429
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    failures = [r for r in caplog.records if "wrong or missing token" in r.getMessage()]
    assert len(failures) == 10 and "127.0.0.1" in failures[0].getMessage()
    assert TOKEN not in caplog.text


def test_token_check_is_exact_whatever_the_length() -> None:
    assert tokens_match(TOKEN, TOKEN)
    assert not tokens_match(TOKEN[:-1], TOKEN)
    assert not tokens_match(TOKEN + "x", TOKEN)
    assert not tokens_match("", TOKEN)


async def test_slack_bad_signature_logs_never_echo_the_body(
    bot_factory: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeSlack() as slack:
        bot = await bot_factory(
            plugin_config=slack.http_mode_config("test-signing-secret"),
        )
        adapter = SlackAdapter(bot)
        await adapter.start()
        try:
            event = {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1"}
            body = json.dumps(event_callback({**event, "text": "FORGED-LOG-LINE"}, event_id="Ev1"))
            endpoint = f"http://127.0.0.1:{adapter.port}{EVENTS_PATH}"
            forged = await deliver(
                endpoint, "test-signing-secret", body, signature="v0=" + "0" * 64
            )
        finally:
            await adapter.stop()
    assert forged.status == 401
    assert "FORGED-LOG-LINE" not in caplog.text
    assert any("invalid signature refused" in r.getMessage() for r in caplog.records)


def test_the_cli_log_handlers_redact_every_line(tmp_path: Any) -> None:
    from honeychat.core.cli import setup_logging
    from honeychat.core.redact import register_secrets, settings_secrets
    from honeychat.core.settings import Settings

    settings = Settings(data_dir=tmp_path, openrouter_api_key=LLM_KEY, redis_url=None)
    register_secrets(settings_secrets(settings))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        path = setup_logging(settings, console_level=logging.CRITICAL)
        log = logging.getLogger("honeychat.test")
        log.error("connecting to redis://:%s@10.1.2.3:6379/0", REDIS_PASSWORD)
        log.warning("the key was %s", LLM_KEY)
        try:
            raise RuntimeError(f"failed with Authorization: Bearer {LLM_KEY}")
        except RuntimeError:
            log.exception("boom")
        for handler in root.handlers:
            handler.flush()
        written = path.read_text()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = saved[0], saved[1]
    assert "redis://:***@10.1.2.3" in written and "boom" in written
    assert REDIS_PASSWORD not in written and LLM_KEY not in written
