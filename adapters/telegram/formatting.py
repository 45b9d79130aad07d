"""Markdown (as LLMs write it) to the HTML subset Telegram accepts, and length-safe splitting.

Telegram's HTML mode knows only a few tags (``b i s u code pre a
blockquote``...) and three named entities; everything else must be escaped.
Headings become bold lines, lists become bullet or numbered lines, raw HTML
from the model is shown as text, never interpreted.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from honeychat.core.textsplit import split_text

TELEGRAM_MAX_TEXT = 4096
"""Longest message text Telegram accepts, in UTF-16 code units."""

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")

_INLINE_TAGS = {"em": "i", "strong": "b", "s": "s"}


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape text for Telegram HTML (``&``, ``<``, ``>``)."""
    return html.escape(text, quote=False)


def markdown_to_html(markdown: str) -> str:
    """Convert Markdown to Telegram HTML. Never raises; unknown constructs become text."""
    root = SyntaxTreeNode(_md.parse(markdown))
    return _blocks(root.children, "\n\n").strip()


def split_html(markdown: str, limit: int = TELEGRAM_MAX_TEXT) -> list[str]:
    """Split Markdown into chunks whose HTML fits ``limit``; returns the Markdown chunks.

    Cuts fall between paragraphs or sentences and never inside a code block,
    so each chunk converts to well-formed HTML on its own.
    """
    return split_text(
        markdown, limit, measure=lambda chunk: telegram_length(markdown_to_html(chunk))
    )


def _blocks(nodes: list[SyntaxTreeNode], sep: str) -> str:
    parts = (_block(node) for node in nodes)
    return sep.join(part for part in parts if part)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _blocks(node.children, "")
    if kind == "inline":
        return _inline(node.children)
    if kind == "heading":
        return f"<b>{_blocks(node.children, '')}</b>"
    if kind == "bullet_list":
        return "\n".join(_list_item(item, "•") for item in node.children)
    if kind == "ordered_list":
        start = int(str(node.attrs.get("start", 1)))
        return "\n".join(_list_item(item, f"{start + i}.") for i, item in enumerate(node.children))
    if kind == "blockquote":
        return f"<blockquote>{_blocks(node.children, chr(10))}</blockquote>"
    if kind == "fence":
        language = node.info.strip().split(" ")[0] if node.info else ""
        code = escape(node.content.rstrip("\n"))
        if language:
            return f'<pre><code class="language-{html.escape(language)}">{code}</code></pre>'
        return f"<pre>{code}</pre>"
    if kind == "code_block":
        return f"<pre>{escape(node.content.rstrip(chr(10)))}</pre>"
    if kind == "hr":
        return "———"
    if kind == "html_block":
        return escape(node.content.rstrip("\n"))
    return _blocks(node.children, "\n") if node.children else escape(node.content)


def _list_item(item: SyntaxTreeNode, marker: str) -> str:
    body = _blocks(item.children, "\n")
    lines = body.split("\n")
    # Continuation lines (nested lists, second paragraphs) are indented under the marker.
    return "\n".join([f"{marker} {lines[0]}", *("   " + line for line in lines[1:])])


def _inline(nodes: list[SyntaxTreeNode]) -> str:
    out: list[str] = []
    for node in nodes:
        kind = node.type
        if kind == "text":
            out.append(escape(node.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(f"<code>{escape(node.content)}</code>")
        elif kind in _INLINE_TAGS:
            tag = _INLINE_TAGS[kind]
            out.append(f"<{tag}>{_inline(node.children)}</{tag}>")
        elif kind == "link":
            href = str(node.attrs.get("href", ""))
            label = _inline(node.children)
            if href.startswith(("http://", "https://", "tg://", "mailto:")):
                out.append(f'<a href="{html.escape(href, quote=True)}">{label}</a>')
            else:
                out.append(label)
        elif kind == "image":
            alt = _inline(node.children) or escape(str(node.attrs.get("alt", "")))
            out.append(alt)
        elif kind == "html_inline":
            out.append(escape(node.content))
        else:
            out.append(_inline(node.children) if node.children else escape(node.content))
    return "".join(out)
