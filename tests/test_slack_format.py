"""Markdown to mrkdwn, Slack text to plain text, and choice encoding."""

from __future__ import annotations

from honeychat.adapters.slack.blocks import render_reply, slack_codec
from honeychat.adapters.slack.events import is_person_message, plain_text
from honeychat.adapters.slack.mrkdwn import to_mrkdwn
from honeychat.core.types import Choice, Reply


def test_control_characters_are_escaped_so_nothing_pings() -> None:
    out = to_mrkdwn("Hey <!channel> and <!here|here> <@U999> & <#C1|general> a<b>c")
    assert "<" not in out and ">" not in out
    assert "&lt;!channel&gt;" in out
    assert "&lt;@U999&gt;" in out
    assert "&amp;" in out


def test_plain_broadcast_keywords_are_defused() -> None:
    out = to_mrkdwn("Attention @channel, @here and @everyone!")
    for word in ("@channel", "@here", "@everyone"):
        assert word not in out
    assert out.replace("\u2060", "") == "Attention @channel, @here and @everyone!"


def test_emphasis_headings_bullets_and_strike() -> None:
    assert to_mrkdwn("**bold** and *italic* and ~~gone~~") == "*bold* and _italic_ and ~gone~"
    assert to_mrkdwn("## Plan\n- tea\n* cake") == "*Plan*\n• tea\n• cake"
    assert to_mrkdwn("__also bold__") == "*also bold*"


def test_links_are_built_only_for_safe_schemes() -> None:
    out = to_mrkdwn("[docs](https://example.com/?a=1&b=2) [x](javascript:alert(1))")
    assert out.startswith("<https://example.com/?a=1&amp;b=2|docs>")
    assert "<javascript" not in out and "javascript:alert(1)" in out


def test_code_is_kept_verbatim_but_escaped() -> None:
    out = to_mrkdwn("run `a **b** <!here>` then\n```py\nif x < 1: **y**\n```")
    assert "`a **b** &lt;!here&gt;`" in out
    assert "```if x &lt; 1: **y**```" in out


def test_plain_text_undoes_slack_wire_format() -> None:
    text = "<@UBOT> hi <@U2|ann>, see <https://x.y|site> in <#C1|general> &amp; 1 &lt; 2"
    assert plain_text(text, "UBOT") == "hi @ann, see site (https://x.y) in #general & 1 < 2"


def test_person_messages_exclude_bots_edits_and_deletions() -> None:
    assert is_person_message({"user": "U1", "text": "hi"}, "UBOT")
    assert is_person_message({"user": "U1", "subtype": "file_share"}, "UBOT")
    assert not is_person_message({"user": "UBOT", "text": "me"}, "UBOT")
    assert not is_person_message({"user": "U1", "bot_id": "B1"}, "UBOT")
    for subtype in ("bot_message", "message_changed", "message_deleted", "channel_join"):
        assert not is_person_message({"user": "U1", "subtype": subtype}, "UBOT")


async def test_choices_render_as_a_static_select() -> None:
    reply = Reply(
        "Pick **one**",
        choices=(Choice("Luna", "character", "luna"), Choice("Max", "character", "max")),
    )
    rendered = render_reply(reply)
    assert rendered["text"] == "Pick *one*"
    select = rendered["blocks"][1]["elements"][0]
    assert select["type"] == "static_select"
    assert [o["value"] for o in select["options"]] == ["character:luna", "character:max"]
    codec = slack_codec()
    assert await codec.decode(codec.encode(Choice("A", "character", "a:b"))) == ("character", "a:b")
    assert await codec.decode("nonsense") is None
    long = Choice("Long", "character", "x" * 400)
    (option,) = render_reply(Reply("Pick", choices=(long,)), codec)["blocks"][1]["elements"][0][
        "options"
    ]
    assert len(option["value"]) <= 150, "a long choice is not dropped: it is stored"
    assert await codec.decode(option["value"]) == ("character", long.value)
    assert "blocks" not in render_reply(Reply("plain"))
