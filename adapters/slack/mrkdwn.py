"""Markdown (as LLMs write it) to Slack mrkdwn, safely.

Slack treats ``<...>`` as control sequences: ``<!channel>`` pings a whole
channel, ``<@U123>`` mentions a user. Text from the LLM must never do that,
so ``&``, ``<`` and ``>`` are escaped everywhere (Slack asks for this even in
code), and the plain-text ``@channel`` / ``@here`` / ``@everyone`` keywords
get a zero-width joiner so they cannot be linked into a ping. Only links we
build ourselves (``<url|label>``) reach Slack as control sequences.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"```[^\n`]*\n?(.*?)```|`[^`\n]+`", re.DOTALL)
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*([^)\s]+)\s*\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_BOLD_MARK = "\x00B\x00"
_ZWJ = "\u2060"  # word joiner: invisible, and breaks Slack's @keyword detection


def escape(text: str) -> str:
    """Escape the three characters Slack reserves for control sequences."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack mrkdwn with no way to ping or mention anyone.

    Bold, italic, strikethrough, links, headings and bullets are translated;
    code spans and fenced blocks are kept verbatim (escaped, no formatting).
    """
    out: list[str] = []
    pos = 0
    for match in _CODE.finditer(markdown):
        out.append(_prose(markdown[pos : match.start()]))
        if match.group(0).startswith("```"):
            out.append("```" + escape(match.group(1) or "").rstrip("\n") + "```")
        else:
            out.append(escape(match.group(0)))
        pos = match.end()
    out.append(_prose(markdown[pos:]))
    return "".join(out)


def _prose(text: str) -> str:
    """Convert text outside code: links first (on the raw text), then emphasis."""
    parts: list[str] = []
    pos = 0
    for match in _LINK.finditer(text):
        parts.append(_emphasis(text[pos : match.start()]))
        parts.append(_link(match.group(1), match.group(2)))
        pos = match.end()
    parts.append(_emphasis(text[pos:]))
    return "".join(parts)


def _link(label: str, url: str) -> str:
    if not url.lower().startswith(_SAFE_SCHEMES):
        return _emphasis(f"{label} ({url})")
    safe_label = _emphasis(label).replace("|", "/")
    safe_url = escape(url).replace("|", "%7C")
    return f"<{safe_url}|{safe_label}>"


def _emphasis(text: str) -> str:
    text = escape(text)
    text = _BROADCAST.sub(lambda m: "@" + _ZWJ + m.group(1), text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    return text.replace(_BOLD_MARK, "*")
