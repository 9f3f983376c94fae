"""Spam and virus scanning at end of DATA, before anything is accepted.

Modules (each network dependency behind one small interface, one adapter module per library):

- :mod:`inbound.scan.results`: typed verdicts (:class:`SpamCheck`, :class:`VirusCheck`,
  :class:`SenderListMatch`) whose ``to_json()`` are the webhook ``spam`` / ``virus`` objects.
- :mod:`inbound.scan.engines`: the two interfaces (:class:`SpamEngine`, :class:`VirusEngine`) and
  :func:`engines_from_urls` (``MAILKITE_SPAM_URL`` / ``MAILKITE_VIRUS_URL`` → adapters).
- :mod:`inbound.scan.rspamd` (rspamd ``/checkv2`` over httpx), :mod:`inbound.scan.spamd`
  (SpamAssassin ``spamd`` over aiospamc), :mod:`inbound.scan.clamd` (clamd ``INSTREAM`` over asyncio
  streams): the adapters.
- :mod:`inbound.scan.lists`: per-domain sender allow- and block-lists (pure).
- :mod:`inbound.scan.headers`: the ``X-Spam-*`` / ``X-Virus-*`` trace fields of the stored copy.
- :mod:`inbound.scan.scanner`: :class:`MessageScanner`, the orchestration (lists first, then both
  scans concurrently, each under its own deadline).

Exception tree (:mod:`inbound.scan.errors`; adapters translate library errors into it at their edge,
the scanner turns every one of them into an ``unscanned`` verdict with a ``failure`` reason, and
``inbound.policy`` turns that into an SMTP answer)::

    ScanError
    ├── ScannerUnavailable      connection refused/reset, DNS of the scanner host, HTTP 5xx
    │   └── ScanTimeout         the per-scan deadline passed
    ├── ScanProtocolError       the scanner answered something we cannot read
    └── MessageTooLarge         the message exceeds what the scanner accepts (clamd StreamMaxLength)
    InvalidScannerUrl (ValueError)  a malformed MAILKITE_SPAM_URL / MAILKITE_VIRUS_URL (startup only)

This package's ``__init__`` imports nothing, so :mod:`inbound.types` can import the result types.
"""
