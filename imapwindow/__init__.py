"""The IMAP window (DESIGN.md "IMAP window"): a read-mostly IMAP4rev1 server on port 993.

Layout, from the wire inwards:
- :mod:`imapwindow.server`: the asyncio TLS listener; per connection a reader task framing commands
  (:mod:`imapwindow.framing`) and an executor running them; per process one Redis subscription.
- :mod:`imapwindow.parsing`: pure grammar parsers, ``parse_x(buf) -> (value, rest)``.
- :mod:`imapwindow.session`: the RFC 3501 state machine, one ``do_<command>`` per command.
- :mod:`imapwindow.fetch` / :mod:`imapwindow.search`: FETCH rendering and SEARCH evaluation (pure).
- :mod:`imapwindow.mailbox`: shared per-process mailbox views (UIDs, flags, mod-sequences).
- :mod:`imapwindow.auth`: app-password logins and the per-address throttle.
- :mod:`imapwindow.notify`: change events between processes (Redis pub/sub).
- :mod:`imapwindow.errors`: the exception tree; each error renders its own tagged response.

Imports flow down only: ``store`` and ``parser``, never ``mailkite``.
"""
