"""The incremental command framer (RFC 3501 §4.3 literals, RFC 7888 LITERAL+) fed the way a
protocol is: in arbitrary pieces. Whatever the split, the same commands come out and the same
continuation requests and refusals go back."""

from __future__ import annotations

import pytest

from imapwindow.errors import CloseConnection
from imapwindow.framing import CommandFramer, FrameLimits, closing_tag

LIMITS = FrameLimits(max_line=200, max_literal=64, max_total=1000)
STREAM = (b"a LOGIN {3}\r\nbob {5+}\r\nsecret\r\n"       # one sync literal, one non-sync (LITERAL+)
          b"b NOOP\n"                                  # bare LF ends a line too
          b"c SEARCH SUBJECT {100}\r\n"                # over the literal limit: refused, never sent
          b"d APPEND INBOX {10}\r\n"                   # uploads are refused before the data
          b"e FETCH 1 (FLAGS)\r\n")
EXPECTED = [b"a LOGIN {3}\r\nbob {5}\r\nsecret", b"b NOOP", b"e FETCH 1 (FLAGS)"]
EXPECTED_SENT = [b"+ Ready for literal data\r\n",
                 b"c BAD [TOOBIG] literal of 100 bytes is over the limit of 64 bytes\r\n",
                 b"d NO [CANNOT] APPEND is not available: this mailbox is read-only except for flags\r\n"]


def _run(pieces: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    framer, commands, sent = CommandFramer(), [], []
    for piece in pieces:
        framer.feed(piece)
        while (command := framer.pop(LIMITS, sent.append)) is not None:
            commands.append(command)
    return commands, sent


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_any_split_frames_the_same_commands(size):
    pieces = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert _run(pieces) == (EXPECTED, EXPECTED_SENT)


def test_incomplete_command_waits_for_more():
    framer = CommandFramer()
    framer.feed(b"a LOGIN {3}\r\nbo")
    sent: list[bytes] = []
    assert framer.pop(LIMITS, sent.append) is None
    framer.feed(b"b x\r\n")
    assert framer.pop(LIMITS, sent.append) == b"a LOGIN {3}\r\nbob x"
    assert sent == [b"+ Ready for literal data\r\n"]


def test_over_limit_non_synchronising_literal_closes_with_its_tag():
    framer = CommandFramer()
    framer.feed(b"t1 LOGIN {500+}\r\n")
    with pytest.raises(CloseConnection) as info:
        framer.pop(LIMITS, lambda _: None)
    assert closing_tag(info.value) == b"t1"
    assert info.value.render(b"t1") == (b"t1 BAD [TOOBIG] literal of 500 bytes is over the limit of 64 bytes\r\n"
                                        b"* BYE [TOOBIG] too much data\r\n")


@pytest.mark.parametrize("data", [b"t2 NOOP " + b"x" * 300, b"t2 NOOP " + b"x" * 300 + b"\r\n"])
def test_line_over_the_limit_closes_whether_or_not_its_end_arrived(data):
    framer = CommandFramer()
    framer.feed(data)
    with pytest.raises(CloseConnection) as info:
        framer.pop(LIMITS, lambda _: None)
    assert closing_tag(info.value) == b"t2"
    assert info.value.code == "TOOBIG"
