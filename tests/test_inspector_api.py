"""The inspector API over real stores, served by uvicorn on loopback, called over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from inspector_helpers import TOKEN, client, path, running_inspector, seed, summarizing_responder
from pydantic import SecretStr

from honeychat.core.bot import Bot
from honeychat.core.cli import main
from honeychat.core.inspector.server import bind_refusal, is_loopback
from honeychat.core.types import ConversationKey
from honeychat.testing.pytest_plugin import BotFactory, send


async def make_bot(bot_factory: BotFactory, **overrides: Any) -> Bot:
    bot_factory.llm.responder = summarizing_responder
    overrides.setdefault("inspector_token", TOKEN)
    return await bot_factory(summary_window=2, hot_buffer_size=4, **overrides)


async def redis_snapshot(bot: Bot) -> dict[str, Any]:
    """Every key of this bot's prefix with its type-appropriate value and TTL presence."""
    assert bot.redis is not None
    snapshot: dict[str, Any] = {}
    async for key in bot.redis.scan_iter(match=f"{bot.settings.key_prefix}:*"):
        kind = await bot.redis.type(key)
        if kind == "hash":
            value: Any = await bot.redis.hgetall(key)
        elif kind == "zset":
            value = await bot.redis.zrange(key, 0, -1, withscores=True)
        else:
            value = await (bot.redis.lrange(key, 0, -1) if kind == "list" else bot.redis.get(key))
        snapshot[key] = value
    return snapshot


async def cold_snapshot(bot: Bot, key: ConversationKey) -> list[Any]:
    assert bot.memory is not None and bot.memory.cold is not None
    return [(s.doc_id, s.text) for s in await bot.memory.cold.all(key.id)]


async def test_without_or_with_a_wrong_token_every_endpoint_is_401_and_nothing_changes(
    bot_factory: BotFactory,
) -> None:
    # More wrong tokens than the default throttle allows (tests/test_leaks.py covers it).
    bot = await make_bot(bot_factory, inspector_auth_failures=1000)
    key = await seed(bot)
    before = (await redis_snapshot(bot), await cold_snapshot(bot, key))
    assert before[1], "seeding wrote summaries"
    conv = path(key)
    requests = [
        ("GET", "/api/characters"),
        ("GET", "/api/conversations"),
        ("GET", "/api/conversations?limit=999999"),
        ("GET", conv + "/messages"),
        ("GET", conv + "/summary"),
        ("GET", conv + "/summaries"),
        ("GET", conv + "/search?q=cat"),
        ("GET", conv + "/export"),
        ("DELETE", conv),
        ("DELETE", f"/api/users/{key.platform}/{key.user_id}?every_platform=true"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ]
    async with running_inspector(bot) as url:
        for token in (None, "wrong-token-0123456789abcdef", TOKEN + "x", ""):
            async with client(url, token) as http:
                for method, target in requests:
                    response = await http.request(method, target)
                    assert response.status_code == 401, (method, target, token)
                    assert response.json()["error"] == "unauthorized"
                    assert response.headers["www-authenticate"] == "Bearer"
        async with client(url, None) as http:
            basic = await http.get("/api/characters", headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/")).status_code == 200  # the page itself holds no data
    after = (await redis_snapshot(bot), await cold_snapshot(bot, key))
    assert after == before


async def test_conversations_are_listed_page_by_page(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    users = ["ann", "bob:with:colons", "chloé", "dan/slash", "eve"]
    for user in users:
        await seed(bot, user=user, turns=1)
    async with running_inspector(bot) as url, client(url) as http:
        seen: list[str] = []
        cursor = 0
        for _ in range(50):
            response = await http.get("/api/conversations", params={"limit": 1, "cursor": cursor})
            assert response.status_code == 200
            page = response.json()
            seen += [item["user_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor == 0:
                break
        assert cursor == 0
        assert sorted(set(seen)) == sorted(users)
        item = next(i for i in page["items"]) if page["items"] else None
        if item is not None:
            assert set(item) == {"id", "platform", "user_id", "character", "kind"}
            assert item["kind"] == "private"

        for bad, word in (
            ({"limit": 100000}, "limit"),
            ({"limit": 0}, "limit"),
            ({"cursor": -1}, "cursor"),
            ({"limit": "many"}, "limit"),
        ):
            response = await http.get("/api/conversations", params=bad)
            assert response.status_code == 422
            assert response.json()["error"] == "invalid_request"
            assert response.json()["detail"].startswith(word + ":")

        characters = (await http.get("/api/characters")).json()
        ids = {c["id"] for c in characters}
        assert {"luna", "marcus", "pixel"} <= ids
        assert [c["id"] for c in characters if c["is_default"]] == [bot.characters.default.id]


async def test_reads_show_each_layer_and_never_write(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    key = await seed(bot, turns=5)  # 10 messages: windows 1-4 and 5-8 summarized
    assert bot.redis is not None and bot.memory is not None and bot.memory.hot is not None
    cache_key = bot.memory.hot.key(key, "summary")
    await bot.redis.delete(cache_key)  # a summary-cache miss
    before = await redis_snapshot(bot)
    async with running_inspector(bot) as url, client(url) as http:
        recent = (await http.get(path(key) + "/messages")).json()
        assert recent["last_seq"] == 10 and recent["summarized_through"] == 8
        assert [m["seq"] for m in recent["messages"]] == list(range(7, 11))
        assert recent["messages"][-1]["role"] == "assistant"
        assert recent["conversation"] == {
            "id": key.id,
            "platform": "test",
            "user_id": "alice",
            "character": key.character_id,
            "kind": "private",
        }

        latest = (await http.get(path(key) + "/summary")).json()["summary"]
        assert (latest["first_seq"], latest["last_seq"]) == (5, 8)
        assert "nurse" in latest["text"]

        summaries = (await http.get(path(key) + "/summaries")).json()["summaries"]
        assert [(s["first_seq"], s["last_seq"]) for s in summaries] == [(1, 4), (5, 8)]
        assert all(s["first_at"] and s["last_at"] for s in summaries)

        found = (
            await http.get(
                path(key) + "/search", params={"q": "Where does my sister live?", "k": 2}
            )
        ).json()
        assert "Priya" in found["results"][0]["text"]
        scores = [r["score"] for r in found["results"]]
        assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)

        exported = (await http.get(path(key) + "/export")).json()
        assert exported["conversation"] == key.id
        assert len(exported["summaries"]) == 2 and len(exported["recent"]) == 4
        assert exported["unavailable"] == []
    assert await bot.redis.exists(cache_key) == 0, "a read filled the summary cache"
    assert await redis_snapshot(bot) == before


async def test_bad_input_gets_clear_4xx_answers(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    key = await seed(bot, turns=1)
    async with running_inspector(bot) as url, client(url) as http:
        unknown = await http.get("/api/conversations/test/nobody/luna/messages")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error": "not_found",
            "detail": "no conversation test:nobody:luna in memory",
        }
        assert (await http.delete("/api/conversations/test/nobody/luna")).status_code == 404
        for bad in (
            "/api/conversations/Bad%20Platform/alice/luna/messages",
            "/api/conversations/test/alice/NOT_A_CHARACTER!/summary",
            "/api/conversations/test/al%01ice/luna/summary",
        ):
            response = await http.get(bad)
            assert response.status_code == 422, bad
            assert response.json()["error"] == "invalid_request"
        for query in ("", "   "):
            response = await http.get(path(key) + "/search", params={"q": query})
            assert response.status_code == 422
            assert response.json()["detail"].startswith("q:")
        assert (await http.get(path(key) + "/search")).status_code == 422
        huge = await http.get(path(key) + "/search", params={"q": "x", "k": 10_000})
        assert huge.status_code == 422 and "k:" in huge.json()["detail"]
        assert (await http.get("/api/nothing-here")).json()["error"] == "not_found"


async def test_clear_erases_both_layers_like_the_chat(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    key = await seed(bot, turns=4)
    other = await seed(bot, user="bob", turns=2)
    async with running_inspector(bot) as url, client(url) as http:
        response = await http.delete(path(key))
        assert response.status_code == 200 and response.json()["cleared"] is True
        recent = (await http.get(path(key) + "/messages")).json()
        assert recent["messages"] == [] and recent["last_seq"] == 8
        assert (await http.get(path(key) + "/summaries")).json()["summaries"] == []
        assert (await http.get(path(key) + "/summary")).json()["summary"] is None
        assert (await http.get(path(other) + "/summaries")).json()["summaries"], "bob untouched"
        listed = (await http.get("/api/conversations", params={"limit": 500})).json()
        assert [i["user_id"] for i in listed["items"]] == ["bob"]


async def test_spaces_are_listed_browsed_and_cleared(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    private = await seed(bot, turns=1)
    message = {"is_direct": False, "space_id": "g 1", "user_name": "Sam", "mentions_bot": True}
    await send(bot, "hello group", user="sam", **message)
    space = ConversationKey.for_space("test", "g 1", bot.characters.default.id)
    async with running_inspector(bot) as url, client(url) as http:
        listed = (await http.get("/api/conversations", params={"limit": 500})).json()["items"]
        assert {(i["kind"], i["user_id"]) for i in listed} == {
            ("private", "alice"),
            ("space", "g 1"),
        }
        assert (await http.get(path(space) + "/messages")).status_code == 404  # a user "g 1"
        recent = (await http.get(path(space) + "/messages", params={"kind": "space"})).json()
        assert recent["conversation"]["id"] == space.id
        first = recent["messages"][0]
        assert (first["text"], first["speaker"], first["speaker_id"]) == (
            "hello group",
            "Sam",
            "sam",
        )
        cleared = await http.delete(path(space), params={"kind": "space"})
        assert cleared.status_code == 200
        assert (await http.get(path(private) + "/messages")).json()["messages"], "untouched"
    assert bot.memory is not None
    assert (await bot.memory.export(space))["recent"] == []


async def test_openapi_schema_is_published_with_typed_responses(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    async with running_inspector(bot) as url, client(url) as http:
        schema = (await http.get("/openapi.json")).json()
    paths = schema["paths"]
    conv = "/api/conversations/{platform}/{user_id}/{character}"
    for suffix in ("/messages", "/summary", "/summaries", "/search", "/export"):
        assert "get" in paths[conv + suffix]
    assert "delete" in paths[conv]
    ok = paths[conv + "/search"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/SearchResults")
    assert {"SummaryOut", "ErrorResponse", "ConversationPage", "Readiness"} <= set(
        schema["components"]["schemas"]
    )


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (
            line.startswith(name + "{") and line.split(" ")[0] == name
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_turns_summaries_and_retrieval(bot_factory: BotFactory) -> None:
    bot = await make_bot(bot_factory)
    async with running_inspector(bot) as url, client(url) as http:
        before = (await http.get("/metrics")).text
        key = await seed(bot, turns=4)
        await http.get(path(key) + "/search", params={"q": "cat"})
        response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    handled = 'honeychat_messages_handled_total{platform="test"}'
    assert metric(after, handled) - metric(before, handled) == 4
    assert (
        metric(after, "honeychat_summaries_written_total")
        - metric(before, "honeychat_summaries_written_total")
        == 2
    )
    assert (
        metric(after, "honeychat_turn_overhead_seconds_count")
        - metric(before, "honeychat_turn_overhead_seconds_count")
        == 4
    )
    model = bot.characters.default.model or bot.settings.tiers["free"].model
    latency = f'honeychat_llm_request_seconds_count{{model="{model}"}}'
    assert metric(after, latency) - metric(before, latency) == 4
    hits = "honeychat_retrieval_hits_total"
    assert metric(after, hits) > metric(before, hits)
    assert 'honeychat_store_errors_total{layer="cold"}' in after


async def test_llm_errors_are_counted_by_model(bot_factory: BotFactory) -> None:
    from honeychat.core.metrics import METRICS
    from honeychat.testing.pytest_plugin import send

    bot = await make_bot(bot_factory, llm_max_retries=0)
    model = bot.characters.default.model or bot.settings.tiers["free"].model
    errors = METRICS.llm_errors.labels(model)
    before = errors._value.get()
    bot_factory.llm.fail_next(500)
    await send(bot, "hello?")
    assert errors._value.get() == before + 1


def test_serve_refuses_a_public_bind_without_a_token(
    bot_factory: BotFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    open_settings = bot_factory.settings(inspector_token=None)
    assert bind_refusal(open_settings, "127.0.0.1") is None
    assert bind_refusal(open_settings, "::1") is None
    for host in ("0.0.0.0", "192.0.2.7", "::", "inspector.example"):
        refusal = bind_refusal(open_settings, host)
        assert refusal is not None and "INSPECTOR_TOKEN" in refusal, host
    assert bind_refusal(bot_factory.settings(inspector_token=SecretStr(TOKEN)), "0.0.0.0") is None
    assert "too short" in (
        bind_refusal(bot_factory.settings(inspector_token=SecretStr("abc")), "0.0.0.0") or ""
    )
    assert is_loopback("localhost") and not is_loopback("10.0.0.1")

    monkeypatch.delenv("INSPECTOR_TOKEN", raising=False)
    monkeypatch.setenv("DATA_DIR", str(bot_factory.data_dir))
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve the inspector on 0.0.0.0 without a token" in err


async def test_cors_is_off_unless_origins_are_configured(bot_factory: BotFactory) -> None:
    origin = {"Origin": "http://127.0.0.1:9999"}
    bot = await make_bot(bot_factory)
    async with running_inspector(bot) as url, client(url) as http:
        response = await http.get("/api/characters", headers=origin)
        assert "access-control-allow-origin" not in response.headers
    bot = await make_bot(bot_factory, inspector_cors_origins="http://127.0.0.1:9999")
    async with running_inspector(bot) as url, client(url) as http:
        response = await http.get("/api/characters", headers=origin)
        assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:9999"


async def test_the_ops_app_serves_only_operations(bot_factory: BotFactory) -> None:
    from honeychat.core.inspector import create_app
    from honeychat.core.inspector.server import make_server

    bot = await make_bot(bot_factory)
    server = make_server(create_app(bot, inspector=False), "127.0.0.1", 0, own_signals=False)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with client(f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).json()["ready"] is True
            assert "honeychat_messages_handled_total" in (await http.get("/metrics")).text
            assert (await http.get("/api/characters")).status_code == 404
            assert (await http.get("/")).status_code == 404
        async with client(f"http://127.0.0.1:{port}", None) as http:
            assert (await http.get("/metrics")).status_code == 401
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
