"""Long replies split on natural boundaries and never inside a code block."""

import pytest

from honeychat.core.textsplit import split_text


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello there", 100) == ["hello there"]


def test_paragraph_boundaries_preferred() -> None:
    text = ("a" * 60 + "\n\n") * 5
    chunks = split_text(text, 130)
    assert all(len(c) <= 130 for c in chunks)
    assert all(set(c.replace("\n", "")) == {"a"} for c in chunks)
    assert "".join(c.replace("\n", "") for c in chunks) == "a" * 300


def test_sentence_boundaries_when_no_paragraphs() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(40))
    chunks = split_text(text, 200)
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(".") for c in chunks)


def test_code_block_is_closed_and_reopened() -> None:
    code = "```python\n" + "".join(f"x_{i} = {i}\n" for i in range(200)) + "```"
    chunks = split_text("Here:\n\n" + code + "\n\nDone.", 300)
    assert all(len(c) <= 300 for c in chunks)
    for chunk in chunks:
        assert chunk.count("```") % 2 == 0, chunk
    body = "".join(chunks)
    for i in range(200):
        assert f"x_{i} = {i}" in body


def test_measure_counts_formatted_length() -> None:
    text = "a & b " * 200
    chunks = split_text(text, 300, measure=lambda s: len(s.replace("&", "&amp;")))
    assert all(len(c.replace("&", "&amp;")) <= 300 for c in chunks)


def test_limit_too_small() -> None:
    with pytest.raises(ValueError):
        split_text("x" * 100, 5)
