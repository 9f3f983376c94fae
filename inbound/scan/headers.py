"""Trace header fields recording the scan verdicts in the stored copy, in the style of SpamAssassin
(``X-Spam-Status``, ``X-Spam-Flag``) and clamav-milter (``X-Virus-Scanned``, ``X-Virus-Status``),
so mail clients and filters that already read those fields understand ours:

    X-Spam-Status: Yes, score=15.00 required=15.00 engine=rspamd
    	tests=GTUBE
    X-Spam-Flag: YES                              (only when the verdict is spam)
    X-Virus-Scanned: clamav at mx.example.com
    X-Virus-Status: Clean

``X-Spam-Status`` starts with ``Yes`` (spam), ``No`` (ham) or ``Unscanned`` (the engine gave no
verdict: ``reason=`` says why); ``tests=`` lists the rules that matched, highest absolute score first.
``X-Virus-Status`` is ``Clean`` or ``Unscanned (reason)`` (infected mail is never stored). A kind of
scan with no engine configured adds no field. Fields are folded (RFC 5322 §2.2.3) to stay within
78 characters a line where the content allows, and never exceed 998 (§2.1.1).

Fields of these names that arrived with the message are removed when we add ours
(:func:`strip_forged`): a sender could otherwise write ``X-Spam-Status: No`` into spam, and a filter
reading the field it meets last would believe it. SpamAssassin drops incoming ``X-Spam-*`` fields
before adding its own for the same reason; we drop the verdict-carrying ones.
"""

from __future__ import annotations

from inbound.scan.results import SpamCheck, VirusCheck
from inbound.trace_fields import remove_fields

LINE = 78
MAX_FIELD = 4000  # characters in one folded field; the tests= list is cut to fit
# Incoming fields that claim a verdict of the kind our fields record (SpamAssassin's and
# clamav-milter's names), removed when ours of that kind are added.
SPAM_VERDICT_FIELDS = frozenset({b"x-spam-status", b"x-spam-flag", b"x-spam-level", b"x-spam-score"})
VIRUS_VERDICT_FIELDS = frozenset({b"x-virus-scanned", b"x-virus-status"})


def fold(name: str, tokens: list[tuple[str, str]]) -> str:
    """``Name:`` and ``(separator, text)`` tokens, folded with CRLF + TAB before a token that would
    pass :data:`LINE` (the separator is dropped there)."""
    lines, current = [], f"{name}:"
    for sep, text in tokens:
        if len(current) + len(sep) + len(text) > LINE and current != f"{name}:":
            lines.append(current)
            current = "\t" + text
        else:
            current += sep + text
    lines.append(current)
    return "\r\n".join(lines)


def spam_fields(check: SpamCheck, engine: str | None) -> list[str]:
    """``X-Spam-Status`` (and ``X-Spam-Flag`` for spam); none when no spam engine ran or applied."""
    if check.engine is None and engine is None:
        return []
    status = {"spam": "Yes,", "ham": "No,", "unscanned": "Unscanned,"}[check.verdict]
    words = [status]
    if check.verdict == "unscanned":
        words.append(f"reason={check.failure or 'skipped'}")
    else:
        words.append(f"score={check.score:.2f}")
        if check.required is not None:
            words.append(f"required={check.required:.2f}")
    words.append(f"engine={check.engine or engine}")
    tokens = [(" ", w) for w in words]
    budget, tests = MAX_FIELD - sum(len(w) + 1 for w in words) - 20, []
    for sym in check.symbols:
        budget -= len(sym.name) + 1
        if budget < 0:
            break
        tests.append(sym.name)
    # tests=A,B,C without spaces; a fold may come after any comma (as SpamAssassin does).
    tokens += [(" " if i == 0 else "", ("tests=" if i == 0 else "") + name + ("," if i < len(tests) - 1 else ""))
               for i, name in enumerate(tests)]
    fields = [fold("X-Spam-Status", tokens)]
    if check.verdict == "spam":
        fields.append("X-Spam-Flag: YES")
    return fields


def virus_fields(check: VirusCheck, engine: str | None, hostname: str) -> list[str]:
    """``X-Virus-Scanned`` and ``X-Virus-Status``; none when no virus engine is configured."""
    if engine is None:
        return []
    status = {"clean": "Clean", "infected": "Infected (" + ", ".join(check.signatures) + ")",
              "unscanned": f"Unscanned ({check.failure or 'skipped'})"}[check.verdict]
    return [f"X-Virus-Scanned: {engine} at {hostname}", f"X-Virus-Status: {status}"]


def strip_forged(raw: bytes, ours: list[str]) -> bytes:
    """``raw`` without the incoming spam verdict fields (:data:`SPAM_VERDICT_FIELDS`) when ``ours``
    (the fields about to be added, as built here) has spam fields, and likewise for the virus
    fields; byte-exact otherwise (inbound.trace_fields). Returns ``raw`` itself when nothing goes."""
    names: set[bytes] = set()
    for field in ours:
        name = field.split(":", 1)[0].strip().lower().encode()
        if name in SPAM_VERDICT_FIELDS:
            names |= SPAM_VERDICT_FIELDS
        elif name in VIRUS_VERDICT_FIELDS:
            names |= VIRUS_VERDICT_FIELDS
    return remove_fields(raw, names) if names else raw
