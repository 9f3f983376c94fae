"""Pure IMAP grammar parsers (RFC 3501 §9 and extensions): ``parse_x(buf) -> (value, rest)``.

Each function reads one grammar element from the front of ``buf`` (a whole command with its
literals inline, as :mod:`imapwindow.framing` assembles it) and returns the value and the bytes after
it; malformed input raises :class:`imapwindow.errors.BadCommand`. No I/O, no state.
"""
