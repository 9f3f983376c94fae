"""``sequence-set`` (RFC 3501 §9): ``1,3:5,7:*``; resolved against a mailbox's numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imapwindow.errors import BadCommand

_SEQ_RE = re.compile(rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*")
MAX_RANGES = 10_000
STAR = -1


@dataclass(frozen=True)
class SequenceSet:
    """Ranges ``(low, high)`` with :data:`STAR` for ``*``, as written (not yet ordered)."""

    ranges: tuple[tuple[int, int], ...]

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Ordered, inclusive ``(low, high)`` ranges once ``*`` is ``largest`` (RFC 3501 §6.4.8:
        ``n:*`` with n above the largest still names the largest). Empty when ``largest`` is 0."""
        if largest <= 0:
            return []
        out = []
        for a, b in self.ranges:
            a = largest if a == STAR else a
            b = largest if b == STAR else b
            lo, hi = min(a, b), max(a, b)
            out.append((lo, hi))
        return out

    def contains(self, value: int, largest: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.resolve(largest))

    def __str__(self) -> str:
        def one(x: int) -> str:
            return "*" if x == STAR else str(x)
        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.ranges)


def parse_sequence_set(buf: bytes) -> tuple[SequenceSet, bytes]:
    """``sequence-set``; zero is a syntax error (RFC 3501 §9: nz-number)."""
    m = _SEQ_RE.match(buf)
    if not m:
        raise BadCommand("expected a message set like 1:*" + (f" near {buf[:20]!r}" if buf else ""))
    ranges = []
    for part in m.group().split(b","):
        lo, _, hi = part.partition(b":")
        a = STAR if lo == b"*" else int(lo)
        b = a if not hi else (STAR if hi == b"*" else int(hi))
        if a == 0 or b == 0:
            raise BadCommand("message numbers start at 1")
        if a > 0xFFFFFFFF or b > 0xFFFFFFFF:
            raise BadCommand("message number out of range")
        ranges.append((a, b))
        if len(ranges) > MAX_RANGES:
            raise BadCommand("message set too long", "LIMIT")
    return SequenceSet(tuple(ranges)), buf[m.end():]


def format_ranges(values: list[int]) -> str:
    """Sorted numbers as a compact sequence-set (``1:3,7``), for responses like ``[MODIFIED …]``."""
    if not values:
        return ""
    values = sorted(values)
    out = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = v
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)
