"""Reply extraction scored on the corpus cases (``shared/corpus/*/NAME.expected.txt``), each source by
its own semantics (tests/support/reply_scoring.py). Target: ≥ 90% exact overall."""

from __future__ import annotations

from parser.reply import extract_html, extract_text
from tests.support.reply_scoring import Extraction, ReplyCase, exact_ratio, load_cases, score_all, table


def _ours(case: ReplyCase) -> Extraction:
    if case.kind == "html":
        return Extraction(extract_html(case.body).html)
    r = extract_text(case.body)
    return Extraction(r.text, r.signature, r.with_signature)


def test_reply_extraction_scores_at_least_90_percent_exact():
    cases = load_cases()
    assert len(cases) >= 70, "the corpus reply cases are missing"
    scores = score_all(_ours, cases)
    print("\n" + table(scores))
    for s in scores:
        if not s.exact:
            print(f"  not exact: {s.case.source}/{s.case.name} (line recall {s.recall:.0%})")
    assert exact_ratio(scores) >= 0.90
    # Conservative: whatever is not exact still keeps almost every expected line.
    assert sum(s.recall for s in scores) / len(scores) >= 0.95
