"""MIME → :class:`ParsedMessage`: addresses, bodies, attachments, reply extraction, thread keys.

Pure: no I/O, no database. Entry point: :func:`parse`.
"""

from parser.mime import parse
from parser.model import Address, Attachment, ParsedMessage, iso8601

__all__ = ["Address", "Attachment", "ParsedMessage", "iso8601", "parse"]
