"""LOGIN / AUTHENTICATE PLAIN with app-passwords (DESIGN.md "App-passwords"; RFC 3501 §6.2.3,
RFC 4616 PLAIN, RFC 4959 SASL-IR, RFC 5530 response codes).

Any username is accepted; the password alone picks the account and scope. Failed attempts are
counted per client address (:mod:`imapwindow.throttle`, shared by every IMAP process through Redis
when there is one): past the limit, logins from that address are refused with ``NO [UNAVAILABLE]``
until the window passes, and each failure is answered after a delay. Argon2 checks run in a worker
thread; a password this process has already verified is not re-hashed while its stored hash is
unchanged (:class:`store.app_passwords.VerifiedCache`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from imapwindow.errors import CommandRefused
from imapwindow.throttle import MAX_TRACKED_ADDRESSES, LoginThrottle
from store.app_passwords import (
    LAST_USED_GRANULARITY, CheckOutcome, Credential, VerifiedCache, check_password, touch_last_used,
)
from store.db import Database

log = logging.getLogger("mailkite.imap")


class Authenticator:
    """Checks app-passwords for the IMAP sessions of one process. ``hostname`` is named in the
    refusal for unverified domains (their MX must point at it)."""

    def __init__(self, db: Database, throttle: LoginThrottle, *, failure_delay_s: float, hostname: str) -> None:
        self.db = db
        self.throttle = throttle
        self.failure_delay_s = failure_delay_s
        self.hostname = hostname
        self._verified = VerifiedCache()
        self._touched: OrderedDict[str, float] = OrderedDict()  # app-password id -> when last-used was written

    async def login(self, password: bytes, client_address: str) -> Credential:
        """The credential for ``password``; raises :class:`CommandRefused` with
        ``[AUTHENTICATIONFAILED]`` (bad, revoked, domain not served) or ``[UNAVAILABLE]`` (throttled)."""
        wait = await self.throttle.retry_after(client_address)
        if wait > 0:
            raise CommandRefused(f"too many failed logins from your address; try again in {int(wait) + 1} s",
                                 "UNAVAILABLE")
        text = password.decode("utf-8", "replace")
        result = await asyncio.to_thread(check_password, self.db, text, cache=self._verified)
        if result.outcome is CheckOutcome.VALID and result.credential is not None:
            await self._touch(result.credential.id)
            return result.credential
        log.info("imap.login_refused", extra={"kv": {"client": client_address, "reason": result.outcome.value}})
        if result.outcome is CheckOutcome.UNKNOWN:
            await self.throttle.failed(client_address)
            if self.failure_delay_s:
                await asyncio.sleep(self.failure_delay_s)
        raise CommandRefused(refusal_text(result.outcome, self.hostname), "AUTHENTICATIONFAILED")

    async def _touch(self, password_id: str) -> None:
        """Record the login as the password's last use, at most once a minute per process (a write
        transaction per login would queue behind ingest on SQLite)."""
        now = time.monotonic()
        if now - self._touched.get(password_id, -1e9) < LAST_USED_GRANULARITY.total_seconds():
            return
        self._touched[password_id] = now
        self._touched.move_to_end(password_id)
        while len(self._touched) > MAX_TRACKED_ADDRESSES:
            self._touched.popitem(last=False)
        await asyncio.to_thread(touch_last_used, self.db, password_id)


def refusal_text(outcome: CheckOutcome, hostname: str) -> str:
    """The human text after ``NO [AUTHENTICATIONFAILED]`` for each refusal."""
    return {
        CheckOutcome.UNKNOWN: "Invalid credentials: use an mk_imap_ app-password (mailkite app-password create)",
        CheckOutcome.REVOKED: "This app-password has been revoked",
        CheckOutcome.DOMAIN_NOT_VERIFIED: ("This domain is not verified: its MX record must point at "
                                           f"{hostname} (mailkite domain verify)"),
        CheckOutcome.DOMAIN_ZERO_RETENTION: ("This domain is zero-retention: nothing is stored, so there is no "
                                             "mailbox to read over IMAP"),
    }.get(outcome, "Authentication failed")
