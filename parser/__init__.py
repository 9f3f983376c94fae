"""MIME → :class:`ParsedMessage`: addresses, bodies, attachments, reply extraction, thread keys.

Pure: no I/O, no database. Entry point: :func:`parse`.

The names below are loaded on first use (PEP 562 module ``__getattr__``): importing a submodule
such as :mod:`parser.imap_structure` must not pull in flanker and its dependencies (~40 MB), which
the long-lived IMAP process never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parser.mime import parse
    from parser.model import Address, Attachment, ParsedMessage, iso8601

_LAZY = {"parse": "parser.mime", "Address": "parser.model", "Attachment": "parser.model",
         "ParsedMessage": "parser.model", "iso8601": "parser.model"}

__all__ = ["Address", "Attachment", "ParsedMessage", "iso8601", "parse"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'parser' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
