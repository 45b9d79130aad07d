"""Redis or Chroma down: the inspector's reads answer 503 naming the layer, /readyz turns red,
and everything is there again when the server comes back."""

from __future__ import annotations

from pathlib import Path

from chroma_server import ChromaServer
from inspector_helpers import client, path, running_inspector, seed, summarizing_responder

from honeychat.core.memory.redis_server import EmbeddedRedis
from honeychat.testing.pytest_plugin import BotFactory


async def test_redis_down_gives_503_naming_the_hot_layer_then_recovers(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "own-redis")
    server.start()
    try:
        bot_factory.llm.responder = summarizing_responder
        bot = await bot_factory(
            summary_window=2, hot_buffer_size=4, redis_url=f"unix://{server.socket_path}"
        )
        key = await seed(bot, turns=3)
        async with running_inspector(bot) as url, client(url) as http:
            before = (await http.get(path(key) + "/export")).json()
            server.stop()
            for suffix in ("/messages", "/summary", "/summaries", "/search?q=cat", "/export"):
                response = await http.get(path(key) + suffix)
                assert response.status_code == 503, suffix
                body = response.json()
                assert body["layer"] == "hot" and "Redis" in body["detail"], suffix
            assert (await http.get("/api/conversations")).status_code == 503
            assert (await http.delete(path(key))).status_code == 503
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            checks = {c["name"]: c["ok"] for c in ready.json()["checks"]}
            assert checks == {"redis": False, "chroma": True, "llm": True}

            server.start()
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get(path(key) + "/export")).json() == before
    finally:
        server.release_sync()
        server.stop()


async def test_chroma_down_gives_503_naming_the_cold_layer_then_recovers(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    chroma = ChromaServer(tmp_path / "chroma-server")
    chroma.start()
    try:
        bot_factory.llm.responder = summarizing_responder
        bot = await bot_factory(summary_window=2, hot_buffer_size=4, chroma_url=chroma.url)
        key = await seed(bot, turns=3)
        async with running_inspector(bot) as url, client(url) as http:
            before = (await http.get(path(key) + "/summaries")).json()
            assert before["summaries"]
            chroma.stop()
            for suffix in ("/summaries", "/search?q=cat", "/export"):
                response = await http.get(path(key) + suffix)
                assert response.status_code == 503, suffix
                assert response.json()["layer"] == "cold", suffix
                assert "Chroma" in response.json()["detail"]
            # The hot buffer still answers.
            assert (await http.get(path(key) + "/messages")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert {c["name"]: c["ok"] for c in ready.json()["checks"]}["chroma"] is False

            chroma.start()  # same port, same data
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get(path(key) + "/summaries")).json() == before
    finally:
        chroma.stop()
