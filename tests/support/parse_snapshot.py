"""Record and compare what ``parser.parse`` returns, to prove a parser change keeps its output.

    .venv/bin/python -m tests.support.parse_snapshot record /tmp/before.jsonl
    .venv/bin/python -m tests.support.parse_snapshot compare /tmp/before.jsonl [--show 20]

One JSON line per input: the corpus messages as they are (``corpus:<path>``), the same messages with
every line ending made CRLF (``crlf:<path>``), and the generated mix of ``bench/parse.py``
(``mix:<n>``). Each line holds ``parse(raw).to_json()`` and the sha256 of every attachment's
``content`` (recomputed here, not taken from the model). ``compare`` re-parses with the code in
the tree and prints every input whose output differs, field by field. A tool for before/after
checks by hand, not a test: the tests compare with flanker's and the stdlib's own readings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from tests.support.corpus import CORPUS

REPO = Path(__file__).resolve().parents[2]


def to_crlf(raw: bytes) -> bytes:
    """``raw`` with every line ending CRLF (bare CRs are left alone)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def inputs(mix: int = 300) -> Iterator[tuple[str, bytes]]:
    """(key, raw) for every corpus message as-is, CRLF-normalised, and the generated mix."""
    sys.path.insert(0, str(REPO / "bench"))
    from parse import generated_mix  # bench/parse.py

    paths = sorted(CORPUS.glob("**/*.eml"))
    for p in paths:
        yield f"corpus:{p.relative_to(CORPUS)}", p.read_bytes()
    for p in paths:
        yield f"crlf:{p.relative_to(CORPUS)}", to_crlf(p.read_bytes())
    for i, raw in enumerate(generated_mix(mix)):
        yield f"mix:{i}", raw


def reading(raw: bytes) -> dict[str, Any]:
    """What we compare: ``to_json()`` plus each attachment's content hash and part number."""
    from parser import parse

    msg = parse(raw)
    return {"json": msg.to_json(),
            "contents": [[a.part, hashlib.sha256(a.content).hexdigest()] for a in msg.attachments]}


def _diff(a: Any, b: Any, path: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diff(a.get(k), b.get(k), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b:
        def short(v: Any) -> str:
            s = json.dumps(v, ensure_ascii=False)
            return s if len(s) < 300 else s[:300] + "…"
        yield f"  {path or '.'}: {short(a)}  ->  {short(b)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["record", "compare"])
    ap.add_argument("file", type=Path)
    ap.add_argument("--show", type=int, default=50, help="differing inputs printed in full at most")
    args = ap.parse_args()
    if args.action == "record":
        with args.file.open("w") as out:
            for key, raw in inputs():
                out.write(json.dumps({"key": key, **reading(raw)}, ensure_ascii=False) + "\n")
        return 0
    before = {}
    with args.file.open() as f:
        for line in f:
            row = json.loads(line)
            before[row.pop("key")] = row
    differing = 0
    for key, raw in inputs():
        now = json.loads(json.dumps(reading(raw), ensure_ascii=False))
        if now != before.get(key):
            differing += 1
            if differing <= args.show:
                print(key)
                for line in _diff(before.get(key), now):
                    print(line)
    print(f"{differing} of {len(before)} inputs differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
