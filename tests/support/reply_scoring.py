"""Scoring reply extraction against the corpus cases (``shared/corpus/*/NAME.expected.txt``).

One place for the case loader, the per-source semantics and the comparison, used by
``tests/test_reply_corpus.py`` and by throwaway comparisons of other extractors.

The sources disagree on what "the reply" is (corpus README, "File conventions"), so each source is
scored by its own semantics:

- ``talon``: quoted history removed, the signature KEPT (our ``extracted_text`` + ``extracted_signature``);
  its HTML cases compare the visible text of the extracted HTML with all whitespace removed.
- ``github``, ``zapier``, ``discourse``: quoted history AND signature removed (our ``extracted_text``).
- ``crisp``: the first fragment before a quote header or a signature: also ``extracted_text``.

Exact match is after whitespace normalisation (CRLF → LF, trailing spaces of each line dropped, leading
and trailing blank lines dropped; all whitespace removed for talon's HTML cases); line recall is the
share of the expected non-blank lines (normalised) that appear among the extracted lines.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import compat32
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from tests.support.corpus import CORPUS


#: corpus folder → (short source name, keeps the signature in the expected reply)
SOURCES: dict[str, tuple[str, bool]] = {
    "talon": ("talon", True),
    "github-email-reply-parser": ("github", False),
    "zapier-email-reply-parser": ("zapier", False),
    "discourse-email-reply-trimmer": ("discourse", False),
    "crisp-email-reply-parser": ("crisp", False),
}


@dataclass(frozen=True)
class ReplyCase:
    """One corpus case: ``kind`` is ``"text"`` or ``"html"``; ``body`` the input body (str)."""

    source: str
    name: str
    kind: str
    body: str
    expected: str
    keeps_signature: bool


@dataclass(frozen=True)
class Extraction:
    """What an extractor returned for one body: the reply without the signature, and the signature."""

    reply: str | None
    signature: str | None = None
    with_signature: str | None = None


@dataclass(frozen=True)
class CaseScore:
    case: ReplyCase
    got: str
    exact: bool
    recall: float


def _first_text_plain(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=compat32)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                return payload.decode(charset)
            except (LookupError, UnicodeDecodeError):
                return payload.decode("utf-8", "replace")
    return ""


def load_cases(corpus: Path = CORPUS) -> list[ReplyCase]:
    """Every case with an ``.expected.txt`` whose input exists, sorted by source then name."""
    cases: list[ReplyCase] = []
    for folder, (source, keeps_sig) in SOURCES.items():
        for expected_path in sorted((corpus / folder).glob("*.expected.txt")):
            name = expected_path.name[: -len(".expected.txt")]
            expected = expected_path.read_text("utf-8")
            base = expected_path.parent / name
            if Path(f"{base}.body.txt").exists():
                body = Path(f"{base}.body.txt").read_bytes().decode("utf-8", "replace")
                cases.append(ReplyCase(source, name, "text", body, expected, keeps_sig))
            elif Path(f"{base}.body.html").exists():
                body = Path(f"{base}.body.html").read_bytes().decode("utf-8", "replace")
                cases.append(ReplyCase(source, name, "html", body, expected, keeps_sig))
            elif Path(f"{base}.eml").exists():
                body = _first_text_plain(Path(f"{base}.eml").read_bytes())
                cases.append(ReplyCase(source, name, "text", body, expected, keeps_sig))
    return cases


def normalise(text: str) -> str:
    """CRLF → LF, trailing whitespace of every line dropped, outer blank lines dropped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


class _TextOf(HTMLParser):
    """Visible text of an HTML fragment (no script/style), block elements as line breaks."""

    _BLOCKS = {"p", "div", "br", "tr", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.out.append(data)


def html_text(fragment: str) -> str:
    """The visible text of an HTML fragment (for scoring only)."""
    p = _TextOf()
    p.feed(fragment)
    p.close()
    return html_lib.unescape("".join(p.out))


def _joined(extraction: Extraction, keeps_signature: bool) -> str:
    reply = extraction.reply or ""
    if keeps_signature and extraction.with_signature is not None:
        return extraction.with_signature
    if keeps_signature and extraction.signature:
        reply = reply.rstrip("\n") + "\n\n" + extraction.signature
    return reply


def score_case(case: ReplyCase, extraction: Extraction) -> CaseScore:
    """Score one extraction by its source's semantics."""
    got = _joined(extraction, case.keeps_signature)
    if case.kind == "html":
        got_cmp = re.sub(r"\s+", "", html_text(got))
        exp_cmp = re.sub(r"\s+", "", case.expected)
        exact = got_cmp == exp_cmp
        recall = 1.0 if exact else (1.0 if exp_cmp and exp_cmp in got_cmp else 0.0)
        return CaseScore(case, got, exact, recall)
    got_n, exp_n = normalise(got), normalise(case.expected)
    got_lines = {line.strip() for line in got_n.split("\n") if line.strip()}
    exp_lines = [line.strip() for line in exp_n.split("\n") if line.strip()]
    recall = sum(1 for line in exp_lines if line in got_lines) / len(exp_lines) if exp_lines else 1.0
    return CaseScore(case, got, got_n == exp_n, recall)


Extractor = Callable[[ReplyCase], Extraction]


def score_all(extract: Extractor, cases: list[ReplyCase] | None = None) -> list[CaseScore]:
    """Run ``extract`` on every case and score it."""
    return [score_case(case, extract(case)) for case in (cases if cases is not None else load_cases())]


def table(scores: list[CaseScore]) -> str:
    """A per-source table: cases, exact matches, exact %, mean line recall; and the overall row."""
    rows: dict[str, list[CaseScore]] = {}
    for s in scores:
        rows.setdefault(s.case.source, []).append(s)
    lines = [f"{'source':<10} {'cases':>5} {'exact':>5} {'exact%':>7} {'recall':>7}"]
    for source, items in list(rows.items()) + [("overall", scores)]:
        n = len(items)
        exact = sum(1 for s in items if s.exact)
        recall = sum(s.recall for s in items) / n if n else 0.0
        lines.append(f"{source:<10} {n:>5} {exact:>5} {100 * exact / n if n else 0:>6.1f}% {100 * recall:>6.1f}%")
    return "\n".join(lines)


def exact_ratio(scores: list[CaseScore]) -> float:
    """Share of exact matches (0..1)."""
    return sum(1 for s in scores if s.exact) / len(scores) if scores else 0.0
