"""Text decoding that never drops text: the declared charset first, then UTF-8, then detection
(chardet, on at most 64 KiB), then Windows-1252 with replacement characters."""

from __future__ import annotations

import codecs

# Labels seen in real mail that Python does not know by that name (WHATWG Encoding aliases).
_ALIASES = {
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ksc5601": "cp949", "euc-kr": "cp949",
    "x-sjis": "shift_jis", "shift-jis": "shift_jis", "windows-31j": "cp932",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8", "x-mac-roman": "mac_roman", "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7", "x-user-defined": "cp1252",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
}
_DETECT_LIMIT = 64 * 1024
_MIN_CONFIDENCE = 0.1


def codec_for(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None when unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


# Single-byte Western labels that real mail often puts on UTF-8 bytes (mislabelled).
_LATIN_CODECS = frozenset({"cp1252", "iso8859-1", "iso8859-15", "latin-1", "ascii"})


def decode_text(data: bytes, declared: str | None) -> str:
    """Decode a text part's bytes. ``declared`` is its ``charset`` parameter (may be wrong or absent).

    Order: a byte-order mark; UTF-8 when the label is a single-byte Western charset (or ASCII) but
    the bytes are valid multi-byte UTF-8 (valid UTF-8 is almost never real Latin-1 text); the
    declared charset; UTF-8; detection; Windows-1252 with replacement characters. Never raises."""
    if data[:3] == codecs.BOM_UTF8:
        return data[3:].decode("utf-8", "replace")
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16", "replace")
    codec = codec_for(declared)
    if (codec is None or codec in _LATIN_CODECS) and not data.isascii():
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        import chardet

        found = chardet.detect(data[:_DETECT_LIMIT])
        guessed = codec_for(found.get("encoding"))
        # A weak guess on a few bytes is worse than Windows-1252 (what mislabelled mail mostly is).
        if guessed and (found.get("confidence") or 0) >= _MIN_CONFIDENCE:
            return data.decode(guessed, "replace")
    except Exception:  # noqa: BLE001 - detection is best effort
        pass
    # A failed UTF-8 label is Windows-1252 in practice; another failed label keeps its own reading.
    return data.decode(codec if codec and codec != "utf-8" else "cp1252", "replace")


def bytes_from_surrogates(value: str) -> str:
    """A string holding surrogate-escaped raw bytes, re-read as UTF-8 or else Windows-1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")
