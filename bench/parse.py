"""Parser throughput: ``parser.parse`` (flanker walk, decoding, reply extraction, threading keys,
auto-submitted flags) beside the stdlib ``email`` parser with ``policy.default`` on the same bytes,
in the same run. Prints messages/s and MB/s per parser and corpus, and the ratio; then the memory
``parse()`` allocates on top of the message (tracemalloc peak, as a multiple of the message size)
for a 10 MB single-attachment message and for the mix.

    .venv/bin/python bench/parse.py [--rounds 3] [--mix 300]

Corpora: every ``shared/corpus/**/*.eml``, and a generated mix (plain replies, HTML newsletters,
messages with 50 KB-2 MB attachments). The stdlib side parses and decodes every leaf part
(``get_content()``), which is what ``parse()`` also does. Best of ``--rounds`` runs, the parsers
taking turns.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
import tracemalloc
from email import message_from_bytes, policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parser import parse  # noqa: E402
from tests.support.corpus import CORPUS  # noqa: E402



def stdlib_default(raw: bytes) -> None:
    msg = message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.is_multipart():
            continue
        try:
            part.get_content()
        except Exception:  # noqa: BLE001 - the stdlib raises on some broken parts; count the work anyway
            pass


def flanker_only(raw: bytes) -> None:
    from flanker import mime

    try:
        root = mime.from_string(raw)
        for part in root.walk(with_self=True):
            if not part.content_type.is_multipart():
                part.body  # noqa: B018 - decodes
    except Exception:  # noqa: BLE001
        pass


def generated_mix(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        head = (f"From: Ana <ana{i}@example.com>\r\nTo: support@example.net\r\nSubject: Re: ticket {i}\r\n"
                f"Message-ID: <m{i}@example.com>\r\nIn-Reply-To: <m{i - 1}@example.com>\r\n"
                f"Date: Mon, 21 Nov 2026 10:04:00 +0000\r\nMIME-Version: 1.0\r\n")
        reply = "Thanks, that works.\r\n\r\nOn Mon, Nov 21, 2026 at 9:00 AM Bo <bo@example.net> wrote:\r\n" + \
            "".join(f"> line {j} of the earlier message\r\n" for j in range(30))
        kind = i % 3
        if kind == 0:
            out.append((head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + reply).encode())
            continue
        html = "<html><body><div>Thanks, that works.</div><div class=\"gmail_quote\">" + "<p>old</p>" * 200 + \
            "</div></body></html>"
        parts = [f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{reply}\r\n",
                 f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"]
        body = f"--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n{''.join(parts)}--b--\r\n"
        if kind == 2:
            size = rng.choice([50_000, 200_000, 800_000, 2_000_000])
            data = base64.encodebytes(rng.randbytes(size)).decode().replace("\n", "\r\n")
            body += (f"--a\r\nContent-Type: application/pdf; name=\"r{i}.pdf\"\r\nContent-Disposition: attachment; "
                     f"filename=\"r{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}\r\n")
        body += "--a--\r\n"
        out.append((head + "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + body).encode())
    return out


PARSERS = (("mailkite parse()", parse), ("stdlib policy.default", stdlib_default), ("flanker alone", flanker_only))


def run(messages: list[bytes], rounds: int) -> dict[str, float]:
    """Best time (s) of each parser over ``messages``. Rounds alternate between the parsers, so a
    change of load on a shared machine falls on all of them rather than on one."""
    best = {label: float("inf") for label, _ in PARSERS}
    for _ in range(rounds):
        for label, fn in PARSERS:
            start = time.perf_counter()
            for raw in messages:
                fn(raw)
            best[label] = min(best[label], time.perf_counter() - start)
    return best


def single_attachment(size: int = 7_500_000, seed: int = 3) -> bytes:
    """A message with one base64 attachment of ``size`` bytes (about 10 MB encoded)."""
    data = base64.encodebytes(random.Random(seed).randbytes(size)).replace(b"\n", b"\r\n")
    return (b"From: Ana <ana@example.com>\r\nTo: support@example.net\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n"
            b"--a\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"\r\n--a--\r\n")


def peak_factor(fn, raw: bytes) -> float:
    """What ``fn(raw)`` allocates at its peak (tracemalloc), beside ``raw`` itself, per byte of ``raw``."""
    tracemalloc.start()
    try:
        fn(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / len(raw)


def memory(mix: list[bytes]) -> None:
    big = single_attachment()
    for raw in mix:  # first-use imports and regex compilation are not a message's cost
        parse(raw)
    print(f"\nmemory: peak allocated on top of the message, x message size (the message itself is 1x more)")
    print(f"  {len(big) / 1e6:.1f} MB single attachment: parse() {peak_factor(parse, big):.2f}x, "
          f"stdlib policy.default {peak_factor(stdlib_default, big):.2f}x")
    for floor in (1_000_000, 50_000):
        sel = [m for m in mix if len(m) >= floor]
        if sel:
            worst = max(peak_factor(parse, m) for m in sel)
            print(f"  mix, the {len(sel)} messages >= {floor / 1e6:g} MB: parse() at most {worst:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mix", type=int, default=300)
    args = ap.parse_args()
    sets = {"corpus": [p.read_bytes() for p in sorted(CORPUS.glob("**/*.eml"))], "mix": generated_mix(args.mix)}
    parse(sets["corpus"][0])  # warm imports (flanker builds its grammar tables once)
    flanker_only(sets["corpus"][0])
    print(f"{'set':<7} {'parser':<24} {'msgs':>5} {'MB':>7} {'msg/s':>8} {'MB/s':>7}")
    for name, msgs in sets.items():
        mb = sum(map(len, msgs)) / 1e6
        times = run(msgs, args.rounds)
        for label, t in times.items():
            print(f"{name:<7} {label:<24} {len(msgs):>5} {mb:>7.1f} {len(msgs) / t:>8.0f} {mb / t:>7.1f}")
        ratio = times["stdlib policy.default"] / times["mailkite parse()"]
        print(f"{name:<7} ratio parse()/stdlib speed: {ratio:.2f}x (>1 means parse() is faster)")
    memory(sets["mix"])


if __name__ == "__main__":
    main()
