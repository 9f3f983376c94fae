"""MAIL FROM / RCPT TO paths: the MX's fast reading of ``<local@domain>`` gives exactly what
aiosmtpd's own parser gives, for every input (it falls back to it for anything unusual), except
that a path aiosmtpd's parser crashes on is refused as a syntax error."""

from __future__ import annotations

import random

import pytest
from aiosmtpd.smtp import SMTP

from inbound.mx import MXProtocol


class _Handler:
    pass


REFERENCE, OURS = SMTP(_Handler()), MXProtocol(_Handler())


def _read(protocol: SMTP, arg: str):
    """What ``protocol`` reads; where aiosmtpd's parser raises, ours must say "unreadable"."""
    try:
        return protocol._getaddr(arg)
    except Exception:  # noqa: BLE001 - aiosmtpd's parser raises on some paths ("<": IndexError)
        return None, None


@pytest.mark.parametrize("arg", [
    "<a@b.c>", "<a@b.c> SIZE=100 BODY=8BITMIME", " <a.b+c@x-y.example>  SIZE=1 ", "<a@b.c>\tSMTPUTF8",
    "<>", "a@b.c", "<a..b@c>", '<"q u"@c>', "<@route:a@b>", "<a@[1.2.3.4]>", "<a@b.c", "<ä@b.c>",
    "<.a@b>", "<a.@b>", "<a@b..c>", "<a@-b.c>", "<a@b.c>x", "<" + "x" * 70 + "@b.c>", "<", "",
])
def test_known_shapes_read_as_aiosmtpd_reads_them(arg: str) -> None:
    assert _read(OURS, arg) == _read(REFERENCE, arg)


def test_random_paths_read_as_aiosmtpd_reads_them() -> None:
    rng = random.Random(20261122)
    args = ["".join(rng.choice("ab.@<>\" -+_\t\\[]:,;()") for _ in range(rng.randint(1, 14))) for _ in range(5000)]
    args += ["<" + "".join(rng.choice("ab.-+_") for _ in range(rng.randint(1, 6))) + "@"
             + "".join(rng.choice("ab.-") for _ in range(rng.randint(1, 6))) + ">" + rng.choice(["", " ", " X=1", "\tY"])
             for _ in range(2000)]
    assert [a for a in args if _read(OURS, a) != _read(REFERENCE, a)] == []


def test_the_local_part_limit_still_applies() -> None:
    limited = MXProtocol(_Handler())
    limited.local_part_limit = 64
    assert limited._getaddr("<" + "x" * 65 + "@b.c>") == (None, None)
    assert limited._getaddr("<" + "x" * 64 + "@b.c>")[0] == "x" * 64 + "@b.c"

