"""Compact UTF-8 JSON for the documents on the delivery path: the parsed message and the webhook body.

``dumps(obj) -> bytes`` and ``loads(data) -> object`` use orjson (RFC 8259 output, keys in insertion
order, no whitespace, non-ASCII characters written as UTF-8 rather than ``\\uXXXX``), several
times faster than the stdlib ``json`` on the 20–100 KB documents a message makes (bench/ingest.py:
encoding and decoding them was a quarter of a webhook worker's Python time).

Where orjson refuses what the stdlib accepts, the stdlib writes the same document instead:
strings holding lone surrogates (text decoded with ``surrogateescape``; replaced by ``?``, as
``str.encode("utf-8", "replace")`` does), integers beyond 64 bits, non-string keys. Both produce
equal JSON values for everything else; only float spelling may differ (``1e+16`` vs ``1e16``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """``obj`` (dicts, lists, str, int, float, bool, None) as compact UTF-8 JSON bytes.

    Raises :class:`TypeError` or :class:`ValueError` for values JSON cannot hold (as ``json.dumps``)."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def loads(data: bytes | str) -> Any:
    """Parse JSON text (bytes in UTF-8, or str). Raises :class:`ValueError` on invalid JSON."""
    return orjson.loads(data)  # orjson.JSONDecodeError is a ValueError (and a json.JSONDecodeError)
