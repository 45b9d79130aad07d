"""Markdown to Telegram HTML, checked against the Bot API's HTML rules (the fake's checker)."""

from __future__ import annotations

import pytest

from honeychat.adapters.telegram.formatting import (
    TELEGRAM_MAX_TEXT,
    markdown_to_html,
    split_html,
    telegram_length,
)
from honeychat.adapters.telegram.keyboard import MAX_CALLBACK_BYTES, ChoiceCodec
from honeychat.core.types import Choice
from honeychat.testing.fake_telegram import html_problem

SAMPLES = [
    "plain text",
    "**bold** and *italic* and ~~gone~~ and `x < y && z`",
    "# Heading\n\nParagraph with <script>alert(1)</script> & more",
    "- one\n- two **b**\n  1. nested\n  2. list",
    "> a quote\n> on two lines",
    "```python\nif a < b and c > d:\n    print('&amp;')\n```",
    '[a link](https://example.com/?a=1&b="2") and ![img](https://x.test/i.png)',
    "[bad scheme](javascript:alert(1))",
    "***both*** _under_ __strong__",
    "Unclosed **bold and `code",
    "1. first\n\n   second paragraph\n2. next",
    "line one  \nhard break\\\nand another",
    "<b>raw html</b> <i>is text</i>",
    "emoji 😀 and ünïcödé",
    "---",
]


@pytest.mark.parametrize("markdown", SAMPLES)
def test_every_sample_is_valid_telegram_html(markdown: str) -> None:
    html = markdown_to_html(markdown)
    assert html_problem(html) is None, html
    assert html.strip()


def test_conversions() -> None:
    assert markdown_to_html("**b** *i* ~~s~~") == "<b>b</b> <i>i</i> <s>s</s>"
    assert markdown_to_html("`a<b`") == "<code>a&lt;b</code>"
    assert markdown_to_html("# Title") == "<b>Title</b>"
    assert markdown_to_html("- a\n- b") == "• a\n• b"
    assert markdown_to_html("3. a\n4. b") == "3. a\n4. b"
    assert (
        markdown_to_html("```py\nx < 1\n```")
        == '<pre><code class="language-py">x &lt; 1</code></pre>'
    )
    assert markdown_to_html("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert markdown_to_html("[l](https://a.test/?x=1&y=2)") == (
        '<a href="https://a.test/?x=1&amp;y=2">l</a>'
    )
    assert "<a" not in markdown_to_html("[l](javascript:alert(1))")
    assert markdown_to_html("p1\n\np2") == "p1\n\np2"


def test_checker_catches_what_telegram_rejects() -> None:
    # The fake's checker is what makes the tests above meaningful.
    assert html_problem("<b>open") is not None
    assert html_problem("<div>x</div>") is not None
    assert html_problem("a & b") is not None
    assert html_problem("a < b") is not None
    assert html_problem("<b>ok</b> &amp; &lt;") is None


def test_telegram_length_counts_utf16() -> None:
    assert telegram_length("abc") == 3
    assert telegram_length("😀") == 2


def test_long_reply_splits_on_boundaries_and_never_inside_code() -> None:
    paragraph = "This sentence has a <tag> & an ampersand in it. " * 12
    code = "```python\n" + "\n".join(f"value_{i} = {i} < {i + 1}" for i in range(120)) + "\n```"
    markdown = "\n\n".join([paragraph] * 6 + [code] + [paragraph] * 6)
    chunks = split_html(markdown)
    assert len(chunks) >= 3
    for chunk in chunks:
        html = markdown_to_html(chunk)
        assert telegram_length(html) <= TELEGRAM_MAX_TEXT
        assert html_problem(html) is None
        assert chunk.count("```") % 2 == 0  # every code block is closed in its own chunk
    rejoined = " ".join(" ".join(chunks).split())
    assert "value_0 = 0 < 1" in rejoined and "value_119 = 119 < 120" in rejoined


def test_escaping_growth_is_measured() -> None:
    # 3000 "<" become 12000 characters of HTML: the split must see the HTML length.
    chunks = split_html("< " * 3000)
    assert len(chunks) >= 3
    assert all(telegram_length(markdown_to_html(c)) <= TELEGRAM_MAX_TEXT for c in chunks)


async def test_callback_data_fits_and_round_trips() -> None:
    codec = ChoiceCodec()
    short = Choice(label="Luna", command="character", value="luna")
    assert codec.encode(short) == "character:luna"
    assert await codec.decode("character:luna") == ("character", "luna")
    long = Choice(label="X", command="character", value="a-very-long-character-id-" * 4)
    data = codec.encode(long)
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert await codec.decode(data) == ("character", long.value)
    assert await codec.decode("garbage") is None
    assert await codec.decode("~unknownkey") is None
    markup = codec.markup((short, long, short))
    assert markup is not None and [len(row) for row in markup.inline_keyboard] == [2, 1]
