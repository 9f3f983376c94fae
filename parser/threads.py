"""Thread keys (RFC 5322 §3.6.4): the root of the References chain, else In-Reply-To, else the
message's own Message-ID. The store turns a key into an account-scoped ``thr_`` id."""

from __future__ import annotations


def thread_key(message_id: str | None, in_reply_to: str | None, references: list[str]) -> str | None:
    """The msg-id naming the thread this message belongs to, or None when the message has no ids."""
    if references:
        return references[0]
    if in_reply_to:
        return in_reply_to
    return message_id
