"""Run the authentication checks (:class:`inbound.auth.checker.Authenticator`) against a test DNS
server, as the MX does: a real resolver pointed at ``nameserver`` (``host:port``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from inbound.auth.checker import AuthConfig, Authenticator
from inbound.dns import Resolver
from inbound.types import AuthResults, SmtpEnvelope

AUTHSERV_ID = "mx.mailkite.test"


def envelope(mail_from: str = "", client_ip: str | None = "127.0.0.1", helo: str | None = "client.test") -> SmtpEnvelope:
    return SmtpEnvelope(mail_from=mail_from, rcpt_to=("inbox@mailkite.test",), client_ip=client_ip, helo=helo,
                        tls=False, received_at=datetime.now(timezone.utc))


def authenticate(raw: bytes, nameserver: str, *, mail_from: str = "", client_ip: str | None = "127.0.0.1",
                 helo: str | None = "client.test", dns_timeout: float = 2.0, **deadlines: float) -> AuthResults:
    """One message through a fresh :class:`Authenticator` (cold cache)."""
    host, _, port = nameserver.rpartition(":")

    async def main() -> AuthResults:
        auth = Authenticator(Resolver([(host, int(port))], timeout=dns_timeout),
                             AuthConfig(authserv_id=AUTHSERV_ID, **deadlines))
        try:
            return await auth(envelope(mail_from, client_ip, helo), raw)
        finally:
            auth.close()

    return asyncio.run(main())
