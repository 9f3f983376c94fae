"""Reply extraction: the new content of a message without its quoted history and signature.

``extract_text(text) -> TextReply`` and ``extract_html(html) -> HtmlReply``. Conservative by design
(the feature users complain about when it deletes real content): history is cut only at a recognised
attribution line ("On … wrote:" in 20 languages, Gmail's CJK forms), an Outlook header block
("From: … Sent: …" and its translations), a separator ("-----Original Message-----", "Forwarded
message", Outlook's rule line), or a ``>``-quoted block; the signature only at an RFC 3676 §4.3
``-- `` delimiter, a mobile sign-off ("Sent from my iPhone", "Von meinem iPhone gesendet"…), a
"-Name" sign-off or a mailing-list footer near the end. When a cut would leave nothing, nothing is
cut: a message that is not a reply extracts to its whole body.

HTML is cut in the document tree (lxml), at the first quote container mail clients write
(``div.gmail_quote``, ``blockquote type=cite``, ``#divRplyFwdMsg``, ``#appendonsend``,
``.moz-cite-prefix``, ``.yahoo_quoted``, Outlook's bordered header div, Hotmail's ``hr#stopSpelling``)
or at the first line the plain-text rules recognise; what remains is serialised again.
Bounded: only the first :data:`MAX_SCAN_LINES` lines are examined (the rest is kept unless it lies
below a cut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from parser import reply_patterns as P

MAX_SCAN_LINES = 5000
SIGNATURE_MAX_LINES = 30
MAX_HTML_CHARS = 2 * 1024 * 1024  # larger HTML bodies are returned whole (no tree is built)


@dataclass(frozen=True)
class TextReply:
    """Result for a plain-text body. ``text``: the reply without quoted history or signature;
    ``signature``: the removed signature block or None; ``with_signature``: the reply with its
    signature (talon's semantics); ``quoted``: whether quoted history was removed."""

    text: str | None
    signature: str | None = None
    with_signature: str | None = None
    quoted: bool = False


@dataclass(frozen=True)
class HtmlReply:
    """Result for an HTML body: ``html`` without the quoted history; ``quoted`` whether a cut happened."""

    html: str | None
    quoted: bool = False


# plain text ------------------------------------------------------------------------------------

def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _blank(line: str) -> bool:
    return not line.strip()


_ASCII_DIGIT_RE = re.compile(r"[0-9]")


def _has_digit(s: str) -> bool:
    """``any(ch.isdigit() for ch in s)``, with ASCII lines (nearly all) searched by a regex: this
    check runs on every line of every message, and the generator made it most of the extraction."""
    if s.isascii():
        return _ASCII_DIGIT_RE.search(s) is not None
    return any(map(str.isdigit, s))


def _has_date_or_address(s: str) -> bool:
    return "@" in s or _has_digit(s)


def _attribution_text(cand: str, *, bare: bool) -> bool:
    """Whether one (joined) line is an attribution: an "… wrote:" verb line, Gmail's CJK or dated
    forms, or (``bare``) a "date, name <address>:" line. Only the line's end is searched (the verb
    sits within 120 characters of it), which keeps long lines cheap."""
    cand = cand.rstrip()
    if not cand or len(cand) > 400 or not _has_date_or_address(cand):
        return False
    last = cand[-1]
    if last in ":：-":
        end = cand[-200:]
        if P.WROTE_LINE_RE.search(end) or (last != "-" and P.CJK_ATTRIBUTION_RE.search(cand)):
            return True
    elif last == ">":
        return bool(P.GMAIL_DATE_ATTRIBUTION_RE.match(cand))
    has_both = "@" in cand and _has_digit(cand)
    if has_both and last not in ":：" and P.WROTE_END_RE.search(cand[-40:]):
        return True
    if last not in ":：":
        return False
    if has_both and P.BARE_ATTRIBUTION_RE.match(cand) and P.BRACKETED_ADDRESS_RE.search(cand):
        return True
    return bare and bool(P.BARE_ATTRIBUTION_RE.match(cand))


def _continuation(line: str) -> bool:
    """A wrapped attribution's later line: non-blank; a ">" start only for a short tail like ">:"
    (a wrapped "<address\n>:" looks quoted)."""
    if _blank(line):
        return False
    s = line.strip()
    return not s.startswith(">") or (len(s) <= 40 and s.endswith((":", "：")))


_END_CHARS = (":", "：", "-", ">")


def _attribution_end(line: str) -> bool:
    """Whether ``line`` may end an attribution: every form ends with ":", "-" or ">", or with
    "wrote" after an address."""
    end = line.rstrip()
    return end[-1:] in _END_CHARS or "@" in end


def _attribution_at(lines: list[str], i: int, k: int, *, bare: bool) -> bool:
    """Whether lines i..i+k joined form an attribution line (line i unquoted)."""
    if i + k >= len(lines) or _blank(lines[i]) or _is_quoted(lines[i]):
        return False
    if not _attribution_end(lines[i + k]):
        return False
    if not all(_continuation(x) for x in lines[i + 1:i + k + 1]):
        return False
    return _attribution_text(" ".join(x.strip() for x in lines[i:i + k + 1]), bare=bare)


def _attribution(lines: list[str], i: int, *, bare: bool = False) -> int | None:
    """The last line index of an attribution starting at line ``i`` (wrapped over up to 3 lines, or
    an "On <date> …" line whose "wrote:" comes a few lines later), or None."""
    first = lines[i].strip() if i < len(lines) else ""
    intro = P.INTRO_WORD_RE.match(first)
    for k in range(3):
        if not _attribution_at(lines, i, k, bare=bare):
            continue
        if k == 0:
            return i
        # A wrapped attribution: line i must look like its start ("On …", a date), not like the
        # reply's last sentence; and a later line that is a whole attribution by itself wins.
        if not (intro or _has_digit(first)) or re.search(r"[^\d\s][.!?]$", first):
            return None
        if any(_attribution_at(lines, i + d, k - d, bare=bare) and P.INTRO_WORD_RE.match(lines[i + d])
               for d in range(1, k + 1)):
            return None
        return i + k
    if intro and _has_digit(first) and len(first) < 200:
        # "On Thu, 31 Mar 2016 at 11:16 Some One\n\n<\nmailto:…>\n> wrote:" (broken wrapping).
        for j in range(i + 1, min(len(lines), i + 7)):
            tail = lines[j].strip().lstrip(">").strip()
            if P.WROTE_LINE_RE.search(tail) and len(tail) < 60:
                return j
    return None


# Every line-start pattern the history scan tries on a stripped line, in one alternation: all are
# anchored at the start and have no groups, so a line this does not match matches none of them,
# and the scan skips their separate tries (most lines of most messages: one regex call, not four).
_LINE_MARK_RE = re.compile("|".join(f"(?:{r.pattern})" for r in (
    P.SEPARATOR_RE, P.FORWARD_INTRO_RE, P.RULE_LINE_RE, P.INTRO_WORD_RE, P.SENT_FROM_RE)), re.IGNORECASE)


def _header_label(line: str) -> str | None:
    if ":" not in line and "：" not in line:
        return None  # HEADER_LINE_RE needs one; the regex's backtracking costs ~4 µs per line
    m = P.HEADER_LINE_RE.match(line)
    if not m:
        return None
    label = " ".join(m.group(1).lower().split())
    return label if label in P.FROM_LABELS or label in P.OTHER_LABELS else None


def _header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style header block starts at ``i``: consecutive "Label: value" lines, one of them
    a From label and one another header (Sent, Date, To, Subject… in any language)."""
    labels: list[str] = []
    j = i
    while j < len(lines) and len(labels) < 12:
        label = _header_label(lines[j])
        if label is None:
            # One wrapped value line ("From: Name\n<address>\nSent: …") is part of the block.
            if (labels and j + 1 < len(lines) and not _blank(lines[j]) and len(lines[j]) < 200
                    and _header_label(lines[j + 1])):
                j += 1
                continue
            break
        labels.append(label)
        j += 1
    return (len(labels) >= 2 and any(lb in P.FROM_LABELS for lb in labels)
            and any(lb in P.OTHER_LABELS and lb not in P.FROM_LABELS for lb in labels))


def _next_nonblank(lines: list[str], i: int, limit: int = 3) -> int | None:
    for j in range(i, min(len(lines), i + limit + 1)):
        if not _blank(lines[j]):
            return j
    return None


def _back_over_separators(lines: list[str], i: int) -> int:
    """Move a cut up over blank lines and rule/separator lines directly above it."""
    j = i
    while j > 0 and (_blank(lines[j - 1]) or P.RULE_LINE_RE.match(lines[j - 1])
                     or P.SEPARATOR_RE.match(lines[j - 1])):
        j -= 1
    # Keep the blank lines that belong to the reply; only rules go with the history.
    while j < i and _blank(lines[j]):
        j += 1
    return j


def _history_start(lines: list[str]) -> tuple[int | None, set[int]]:
    """Where unquoted history begins (a line index, or None), and the indices of attribution lines
    that introduce a ``>``-quoted block (removed with that block)."""
    intros: set[int] = set()
    n = min(len(lines), MAX_SCAN_LINES)
    # A cheap necessary condition for _attribution(lines, i, …) (either ``bare``): one of lines
    # i..i+2 may end an attribution (_attribution_end), or line i starts like one ("On …") for
    # the "wrote:" found a few lines later (INTRO_WORD_RE, one of _LINE_MARK_RE's patterns).
    ends = [_attribution_end(line) for line in lines[:n + 2]] + [False, False]
    near_end = [a or b or c for a, b, c in zip(ends, ends[1:], ends[2:])]
    seen_content = False
    i = 0
    while i < n:
        line = lines[i]
        s = line.strip()
        if not s or s[0] == ">":  # _blank(line) or _is_quoted(line), inline: this runs for every line
            i += 1
            continue
        marked = _LINE_MARK_RE.match(s) is not None
        if marked and (P.SEPARATOR_RE.match(s) or P.FORWARD_INTRO_RE.match(s)):
            return _back_over_separators(lines, i), intros
        if marked and P.RULE_LINE_RE.match(s):
            nxt = _next_nonblank(lines, i + 1, 2)
            if nxt is not None and _header_label(lines[nxt]) and _header_block(lines, nxt):
                return i, intros
        if (":" in line or "：" in line) and _header_block(lines, i):  # a label needs one (_header_label)
            return _back_over_separators(lines, i), intros
        end = None
        if near_end[i] or (marked and P.INTRO_WORD_RE.match(s)):
            end = _attribution(lines, i, bare=False)
            if end is None:
                end = _attribution(lines, i, bare=True)
                nxt = _next_nonblank(lines, end + 1) if end is not None else None
                if end is not None and (nxt is None or not _is_quoted(lines[nxt])):
                    end = None  # a bare "…:" line only counts right above a quoted block
        if end is not None:
            nxt = _next_nonblank(lines, end + 1)
            if nxt is not None and _is_quoted(lines[nxt]):
                intros.update(range(i, end + 1))
                i = end + 1
                continue
            return _back_over_separators(lines, i), intros
        if seen_content and marked and P.SENT_FROM_RE.match(s):
            # A mobile sign-off ends the new text; unquoted text below it that is not another
            # sign-off is the history the phone appended without an attribution line.
            j = i + 1
            while j < n and (_blank(lines[j]) or P.SENT_FROM_RE.match(lines[j].strip())):
                j += 1
            if j < n and not _is_quoted(lines[j]):
                return j, intros
        seen_content = True
        i += 1
    return None, intros


def _drop_quoted_blocks(lines: list[str], intros: set[int]) -> list[str]:
    """Remove ``>``-quoted blocks and the attribution lines that introduce them."""
    if not intros and ">" not in "\n".join(lines):  # nothing quoted (most replies' new text): in C
        return list(lines)
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i in intros or _is_quoted(lines[i]):
            # Drop the blank lines just above an intro or a quoted block too.
            while out and _blank(out[-1]):
                out.pop()
            j = i
            while j < len(lines) and (j in intros or _is_quoted(lines[j])
                                      or (_blank(lines[j]) and _continues_quote(lines, j, intros))
                                      or _wrap_spill(lines, j)):
                j += 1
            while j < len(lines) and _blank(lines[j]):
                j += 1
            i = j
            if out and j < len(lines):
                out.append("")
            continue
        out.append(lines[i])
        i += 1
    return out


def _wrap_spill(lines: list[str], j: int) -> bool:
    """An unquoted line squeezed between two quoted lines: the tail of a quoted line a client
    re-wrapped without its ">" (an inline answer has blank lines around it)."""
    return (0 < j < len(lines) - 1 and not _blank(lines[j]) and _is_quoted(lines[j - 1])
            and _is_quoted(lines[j + 1]))


def _continues_quote(lines: list[str], j: int, intros: set[int]) -> bool:
    k = _next_nonblank(lines, j, 10)
    return k is not None and (k in intros or _is_quoted(lines[k]))


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """(reply lines, signature lines) — the signature is a short block at the end only."""
    n = len(lines)
    while n and _blank(lines[n - 1]):
        n -= 1
    lines = lines[:n]
    start: int | None = None
    # A trailing run of mobile sign-offs (any length: every line is a known sign-off).
    run = n
    while run > 0 and (_blank(lines[run - 1]) or P.SENT_FROM_RE.match(lines[run - 1].strip())):
        run -= 1
    while run < n and _blank(lines[run]):
        run += 1
    if run < n:
        start = run
    for i in range(max(0, n - SIGNATURE_MAX_LINES), start if start is not None else n):
        s = lines[i].strip()
        tail = n - i
        if P.SIG_DELIMITER_RE.match(lines[i].rstrip()):
            start = i
            break
        if tail <= 10 and P.DASH_NAME_RE.match(s):
            start = i
            break
        if tail <= 10 and P.LIST_FOOTER_RE.match(s):
            start = i
            break
    if start is None or not any(not _blank(x) for x in lines[:start]):
        return lines, []
    return lines[:start], lines[start:]


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n").rstrip()


def extract_text(text: str | None) -> TextReply:
    """The reply part of a plain-text body (see the module docstring); the whole body when no quoted
    history is recognised. Never raises."""
    if text is None:
        return TextReply(None)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, intros = _history_start(lines)
    kept = lines[:cut] if cut is not None else lines
    dropped = cut is not None
    unquoted = _drop_quoted_blocks(kept, intros)
    if any(not _blank(x) for x in unquoted):
        dropped = dropped or len(unquoted) != len(kept) or bool(intros)
        kept = unquoted
    if not any(not _blank(x) for x in kept):
        whole = _join(lines)
        return TextReply(whole, None, whole, False)
    reply, sig = _split_signature(kept)
    with_sig = _join(kept)
    return TextReply(_join(reply), _join(sig) if sig else None, with_sig, dropped)


# HTML ------------------------------------------------------------------------------------------

_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-cite-prefix",
                            "outlookmessageheader", "protonmail_quote", "zmail_extra", "tutanota_quote"})
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "stopspelling", "isforwardcontent",
                        "olk_src_body_section", "mail-editor-reference-message-container"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature"})
_OUTLOOK_BORDER_RE = re.compile(r"border-top:\s*solid\s+#(?:e1e1e1|b5c4df)", re.I)
_BLOCK_TAGS = frozenset({"p", "div", "br", "tr", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5",
                         "h6", "hr", "table", "pre", "section", "article", "header", "footer", "dl", "dt", "dd"})
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


def _classes(el) -> set[str]:
    return {c.lower() for c in (el.get("class") or "").split()}


def _is_quote_container(el) -> bool:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag == "blockquote" and (el.get("type") or "").lower() == "cite":
        return True
    if _classes(el) & _QUOTE_CLASSES:
        return True
    if (el.get("id") or "").lower() in _QUOTE_IDS:
        return True
    return tag == "div" and bool(_OUTLOOK_BORDER_RE.search(el.get("style") or ""))


@dataclass
class _Line:
    text: str
    anchor: tuple  # ("start", el) | ("text", el) | ("tail", el)
    quoted: bool


def _html_lines(root) -> Iterator[_Line]:
    """Visible text lines of a tree, each with where it starts; lines inside <blockquote> are quoted."""
    buf: list[str] = []
    anchor: list[tuple | None] = [None]
    quoted_at: list[bool] = [False]

    def flush():
        text = "".join(buf)
        buf.clear()
        a, q = anchor[0], quoted_at[0]
        anchor[0] = None
        if text.strip() and a is not None:
            return _Line(text, a, q)
        return None

    def add(text: str | None, where: tuple, quoted: bool):
        if not text:
            return
        if anchor[0] is None and text.strip():
            anchor[0] = where
            quoted_at[0] = quoted
        buf.append(text)

    def walk(el, depth_quoted: int):
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower()
        if tag in _SKIP_TAGS or not tag:
            yield from ()
        else:
            q = depth_quoted + (1 if tag == "blockquote" else 0)
            if tag in _BLOCK_TAGS:
                line = flush()
                if line:
                    yield line
                if tag == "hr":
                    yield _Line("_" * 32, ("start", el), q > 0)
            add(el.text, ("text", el), q > 0)
            for child in el:
                yield from walk(child, q)
            if tag in _BLOCK_TAGS:
                line = flush()
                if line:
                    yield line
        add(el.tail, ("tail", el), depth_quoted > 0)

    yield from walk(root, 0)
    last = flush()
    if last:
        yield last


def _remove_after(node, root) -> None:
    """Remove everything that follows ``node`` in document order (not ``node`` itself)."""
    while node is not None and node is not root:
        for sib in list(node.itersiblings()):
            node.getparent().remove(sib)
        parent = node.getparent()
        if parent is None or parent is root:
            break
        if parent.tag != "body":
            parent.tail = None
        node = parent


def _cut(anchor: tuple, root) -> None:
    kind, el = anchor
    if kind == "start":
        _remove_after(el, root)
        el.tail = None
        el.getparent().remove(el)
    elif kind == "text":
        el.text = None
        for child in list(el):
            el.remove(child)
        _remove_after(el, root)
        el.tail = None
    else:
        el.tail = None
        _remove_after(el, root)


def _visible(root) -> str:
    return "".join(x.text for x in _html_lines(root))


def extract_html(html: str | None) -> HtmlReply:
    """The reply part of an HTML body: cut at the first quote container or recognised attribution
    (see the module docstring); the original HTML, unchanged, when nothing is cut. Never raises."""
    if html is None or not html.strip() or len(html) > MAX_HTML_CHARS:
        return HtmlReply(html)
    try:
        import lxml.etree
        import lxml.html

        root = lxml.html.document_fromstring(_XML_DECL_RE.sub("", html))
    except Exception:  # noqa: BLE001 - lxml raises several types on hostile markup; keep the body
        return HtmlReply(html)
    container = next((el for el in root.iter() if isinstance(el.tag, str) and _is_quote_container(el)), None)
    lines = list(_html_lines(root))
    order = {el: i for i, el in enumerate(root.iter())}
    if container is not None:
        limit = order[container]
        # Only the lines above the container can move the cut up.
        lines = [ln for ln in lines if order.get(ln.anchor[1], 0) < limit]
    texts = [("> " if ln.quoted else "") + " ".join(ln.text.split()) for ln in lines]
    cut_line, intros = _history_start(texts)
    anchor = None
    if container is not None:
        anchor = ("start", container)
        # A text cut above the container wins; so does the attribution line right above it.
        for idx, ln in enumerate(lines):
            if order.get(ln.anchor[1], 0) >= limit:
                break
            if (cut_line is not None and idx >= cut_line) or idx in intros:
                anchor = ln.anchor
                break
            if idx == len(lines) - 1 or order.get(lines[idx + 1].anchor[1], 0) >= limit:
                if _attribution(texts, idx, bare=True) == idx:
                    anchor = ln.anchor
    elif cut_line is not None and cut_line < len(lines):
        anchor = lines[cut_line].anchor
    else:
        # A trailing quoted block with its attribution: cut at the attribution.
        trailing = len(texts)
        while trailing > 0 and texts[trailing - 1].startswith("> "):
            trailing -= 1
        if trailing < len(texts):
            start = trailing
            while start > 0 and start - 1 in intros:
                start -= 1
            if start < trailing:
                anchor = lines[start].anchor
    if anchor is None:
        return HtmlReply(html)
    try:
        _cut(anchor, root)
        for el in list(root.iter()):
            if isinstance(el.tag, str) and _classes(el) & _SIGNATURE_CLASSES and el.getparent() is not None:
                el.drop_tree()
        if not _visible(root).strip():
            return HtmlReply(html)
        return HtmlReply(lxml.html.tostring(root, encoding="unicode"), True)
    except Exception:  # noqa: BLE001 - a tree we cannot cut: keep the body
        return HtmlReply(html)
