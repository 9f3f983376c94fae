"""The chunked DATA reader against a real asyncio StreamReader fed with hostile byte sequences,
compared with the RFC 5321 §4.1.1.4 / §4.5.2 rules it implements."""

from __future__ import annotations

import asyncio

import pytest

from inbound.smtp_data import read_data_section


def read(chunks: list[bytes], max_bytes: int | None = 1000, eof: bool = False):
    async def go():
        reader = asyncio.StreamReader(limit=64 * 1024)
        for c in chunks:
            reader.feed_data(c)
        if eof:
            reader.feed_eof()
        section = await read_data_section(reader, max_bytes)
        reader.feed_eof()
        return section, await reader.read()

    return asyncio.run(go())


@pytest.mark.parametrize("chunks,content,rest", [
    ([b".\r\n"], b"", b""),                                            # empty message
    ([b"a\r\n.\r\n"], b"a\r\n", b""),
    ([b"a\r\n..b\r\n.c\r\n.\r\nQUIT\r\n"], b"a\r\n.b\r\nc\r\n", b"QUIT\r\n"),  # unstuffing, pipelined QUIT
    ([b"..x\r\n.\r\n"], b".x\r\n", b""),                             # leading dot on the first line
    ([b"a\r", b"\n", b".", b"\r", b"\nNOOP\r\n"], b"a\r\n", b"NOOP\r\n"),  # terminator split across reads
    ([b"hello\n.\r\nsmuggled\r\n.\r\n"], b"hello\n.\r\nsmuggled\r\n", b""),  # bare LF never ends DATA
    # The CRLF line ".\nsmuggled" starts with a dot and has more characters: §4.5.2 deletes the dot.
    ([b"hello\r\n.\nsmuggled\r\n.\r\n"], b"hello\r\n\nsmuggled\r\n", b""),
    ([b"x" * 5000 + b"\r\n.\r\n"], None, b""),                         # a long line is fine (under SIZE)
])
def test_end_of_data_and_transparency(chunks, content, rest):
    section, after = read(chunks, max_bytes=10_000)
    expected = content if content is not None else b"x" * 5000 + b"\r\n"
    assert (section.content, section.too_big, section.closed) == (expected, False, False)
    assert after == rest


def test_over_the_limit_is_read_to_the_end_and_reported():
    body = b"y" * 998 + b"\r\n"
    section, after = read([body] * 50 + [b".\r\nQUIT\r\n"], max_bytes=10_000)
    assert section.too_big and section.content == b"" and after == b"QUIT\r\n"
    section, _ = read([b"z" * 10_000 + b"\r\n.\r\n"], max_bytes=10_000)
    assert section.too_big
    section, _ = read([b"z" * 9_998 + b"\r\n.\r\n"], max_bytes=10_000)
    assert not section.too_big and len(section.content) == 10_000


def test_client_gone_before_the_final_dot():
    section, _ = read([b"half a message\r\n"], eof=True)
    assert section.closed and section.content == b""
