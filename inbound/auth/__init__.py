"""Email authentication at end of DATA: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), ARC (RFC 8617),
DMARC (RFC 7489), reported as typed verdicts and an ``Authentication-Results`` field (RFC 8601).

Modules: ``results`` (typed verdicts), ``spf`` (pyspf), ``dkim`` and ``arc`` (dkimpy), ``dmarc``
(policy discovery, alignment, the pure ``evaluate``), ``results_header`` (RFC 8601 field, stripping
forged ones), ``checker`` (:class:`~inbound.auth.checker.Authenticator`, the pipeline hook).

Errors: no check raises to its caller. Each module translates its library's errors into a verdict
at its edge — ``inbound.dns.DnsError`` → ``temperror``; pyspf ``TempError``/``PermError`` →
``temperror``/``permerror``; dkimpy ``DKIMException`` → ``permerror``/``fail``/``policy`` by step;
checkdmarc ``DMARCError`` → :class:`DmarcSyntaxError` → ``permerror``; a check out of time →
``temperror``. The package's own exception tree:

- :class:`AuthError`
  - :class:`DmarcSyntaxError` — a DMARC record that cannot be parsed (also a ``ValueError``)
"""


class AuthError(Exception):
    """Base of this package's errors."""


class DmarcSyntaxError(AuthError, ValueError):
    """A DMARC record that cannot be parsed (RFC 7489 §6.3); reported as ``permerror``."""
