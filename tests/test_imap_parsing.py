"""The pure IMAP grammar parsers (imapwindow/parsing): table tests, and what bad input raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imapwindow.errors import BadCommand, CommandRefused
from imapwindow.parsing.command import UntaggedBad, parse_command
from imapwindow.parsing.fetch import BodySection
from imapwindow.parsing.sequence import SequenceSet, format_ranges, parse_sequence_set


@pytest.mark.parametrize("text, largest, expected", [
    (b"1:*", 5, [(1, 5)]), (b"*", 3, [(3, 3)]), (b"7:*", 5, [(5, 7)]), (b"2,4:6", 9, [(2, 2), (4, 6)]),
    (b"*:2", 4, [(2, 4)]), (b"1:*", 0, []),
])
def test_sequence_sets(text, largest, expected):
    seq, rest = parse_sequence_set(text)
    assert rest == b"" and seq.resolve(largest) == expected


@pytest.mark.parametrize("bad", [b"0", b"1:0", b"x", b"", b"4294967296"])
def test_bad_sequence_sets(bad):
    with pytest.raises(BadCommand):
        parse_sequence_set(bad)


def test_format_ranges():
    assert format_ranges([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"


def test_fetch_sections_and_labels():
    cmd = parse_command(b'a UID FETCH 1:* (UID BODY.PEEK[1.2.HEADER.FIELDS (From "X-Odd Name")]<10.20> '
                        b'BODY[2.MIME] BODY[] RFC822.SIZE) (CHANGEDSINCE 12)')
    items = cmd.args["request"].items
    assert cmd.uid and cmd.name == "FETCH"
    assert items[1] == BodySection(True, (1, 2), "HEADER.FIELDS", ("From", "X-Odd Name"), (10, 20))
    assert items[1].label() == b'BODY[1.2.HEADER.FIELDS (From "X-Odd Name")]<10>'
    assert items[2].label() == b"BODY[2.MIME]" and not items[2].peek
    assert items[3].label() == b"BODY[]"
    assert cmd.args["request"].changed_since == 12 and "MODSEQ" in cmd.args["request"].names


@pytest.mark.parametrize("line, message", [
    (b"a FETCH 1 BODY[MIME]", "MIME needs a part number (RFC 3501 section 6.4.5)"),
    (b"a FETCH 1 BODY[]<5.0>", "partial count must not be zero"),
    (b"a FETCH 1 BODY[TEXTX]", "expected ']' near b'X]'"),
    (b"a STORE 1 +FLAGS (\\Nope)", "unknown system flag \\Nope"),
    (b"a SEARCH OR FROM x", "expected a space at the end of the command"),
    (b"a LOGIN a", "expected a space at the end of the command"),
    (b"a SELECT INBOX (QRESYNC)", "unknown SELECT parameter QRESYNC"),
    (b"a SEARCH " + b"NOT " * 40 + b"ALL", "search criteria too complex"),
])
def test_bad_commands(line, message):
    with pytest.raises(BadCommand) as exc:
        parse_command(line)
    assert exc.value.text == message


def test_untagged_and_charset_errors():
    with pytest.raises(UntaggedBad):
        parse_command(b"+x NOOP")
    with pytest.raises(CommandRefused) as exc:
        parse_command(b"a SEARCH CHARSET ISO-2022-JP ALL")
    assert exc.value.code == "BADCHARSET (UTF-8 US-ASCII)"


def test_literals_in_commands():
    cmd = parse_command(b"a LOGIN {3}\r\nb\xc3\xa9 {4}\r\npa s")
    assert cmd.args == {"username": b"b\xc3\xa9", "password": b"pa s"}
    cmd = parse_command(b'a LIST (SPECIAL-USE SUBSCRIBED) "" ("INBOX" %) RETURN (CHILDREN STATUS (MESSAGES))')
    assert cmd.args["selection"] == ["SPECIAL-USE", "SUBSCRIBED"] and cmd.args["patterns"] == ["INBOX", "%"]
    assert cmd.args["status_items"] == ["MESSAGES"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_an_imap_error(data):
    """Whatever a client sends, the parser answers with a value or an IMAP error, never a crash."""
    try:
        parse_command(data)
    except (BadCommand, CommandRefused):
        pass


def test_sequence_set_str_roundtrip():
    assert str(SequenceSet(((1, -1), (3, 3)))) == "1:*,3"
