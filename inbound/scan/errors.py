"""The scanning exception tree (drawn in :mod:`inbound.scan`). Adapters raise only these."""

from __future__ import annotations


class ScanError(Exception):
    """A scan could not produce a verdict. ``failure`` is the stable reason name recorded in the
    verdict (``SpamCheck.failure`` / ``VirusCheck.failure``) and used by the policy."""

    failure = "error"


class ScannerUnavailable(ScanError):
    """The scanner could not be reached or failed on its side (retry later: 451 4.7.1)."""

    failure = "unavailable"


class ScanTimeout(ScannerUnavailable):
    """No verdict within the per-scan deadline (retry later: 451 4.7.1)."""

    failure = "timeout"


class ScanProtocolError(ScanError):
    """The scanner's answer could not be read (treated like an outage: 451 4.7.1)."""

    failure = "protocol_error"


class MessageTooLarge(ScanError):
    """The message is larger than the scanner accepts (clamd ``StreamMaxLength``). Permanent for
    this message: retrying cannot help."""

    failure = "too_large"


class InvalidScannerUrl(ValueError):
    """A scanner URL (``MAILKITE_SPAM_URL`` / ``MAILKITE_VIRUS_URL``) is malformed."""
