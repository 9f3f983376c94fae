"""Reply extraction, first version: the new text of a reply without the quoted history below it.

Conservative by design: a cut happens only at a recognised quote header (``On … wrote:``,
``-----Original Message-----``, an Outlook ``From:``/``Sent:`` block) or at the start of a ``>``
quoted block that runs to the end, and never when it would leave nothing.
"""

from __future__ import annotations

import re

_QUOTE_HEADER_RES = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.M | re.S),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.M | re.I),
    re.compile(r"^\s*From:\s.*\n\s*(Sent|Date):\s", re.M),
    re.compile(r"^\s*_{20,}\s*$\n\s*From:", re.M),
]
_HTML_QUOTE_MARKERS = [
    re.compile(r'<div[^>]*class="?gmail_quote', re.I),
    re.compile(r'<blockquote[^>]*type="?cite', re.I),
    re.compile(r'<div[^>]*id="?divRplyFwdMsg', re.I),
    re.compile(r'<div[^>]*id="?appendonsend', re.I),
    re.compile(r'<div[^>]*class="?moz-cite-prefix', re.I),
    re.compile(r'<div[^>]*class="?yahoo_quoted', re.I),
]


def extract_text(text: str | None) -> str | None:
    """The reply part of a plain-text body; the whole body when no quote is recognised."""
    if text is None:
        return None
    cut = len(text)
    for rx in _QUOTE_HEADER_RES:
        m = rx.search(text)
        if m and m.start() < cut:
            cut = m.start()
    lines = text[:cut].split("\n")
    # A trailing block of ">"-quoted lines (with blank lines between) is history too.
    end = len(lines)
    while end > 0 and (lines[end - 1].strip() == "" or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if any(line.lstrip().startswith(">") for line in lines[end:]):
        lines = lines[:end]
    reply = "\n".join(lines).strip()
    return reply if reply else text.strip()


def extract_html(html: str | None) -> str | None:
    """The reply part of an HTML body: everything before the first known quote container."""
    if html is None:
        return None
    cut = len(html)
    for rx in _HTML_QUOTE_MARKERS:
        m = rx.search(html)
        if m and m.start() < cut:
            cut = m.start()
    reply = html[:cut]
    visible = re.sub(r"<[^>]+>|&nbsp;|\s", "", reply)
    return reply.rstrip() if visible else html
