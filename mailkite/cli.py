"""The ``mailkite`` command (DESIGN.md, "CLI"). Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import datetime
from typing import Callable, Sequence

from mailkite.config import ConfigError, Settings, load_settings
from mailkite.logsetup import configure_logging

# dnspython's DNSSEC module warns at import that cryptography deprecates DSA (4 lines in every
# process: 16 on each start of ``serve``). We verify no DNSSEC; the noise hid the real output.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"dns\.dnssecalgs")

EXIT_USAGE = 2
EXIT_ERROR = 1


class CliError(Exception):
    """A user-facing error: printed as ``mailkite: <message>``."""


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


# Roles -----------------------------------------------------------------------------------------

def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from mailkite.serve import serve

    configure_logging("serve", settings.log_level)
    return serve(settings)


def cmd_mx(settings: Settings, args: argparse.Namespace) -> int:
    from mailkite.roles import run_mx

    configure_logging("mx", settings.log_level)
    run_mx(settings)
    return 0


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from mailkite.roles import run_web

    configure_logging("web", settings.log_level)
    run_web(settings)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from mailkite.roles import run_worker_role

    configure_logging("worker", settings.log_level)
    run_worker_role(settings, with_relay=not args.no_relay, burst=args.burst)
    return 0


def cmd_imap(settings: Settings, args: argparse.Namespace) -> int:
    from mailkite.imap_role import run_imap  # not via mailkite.roles: keeps the IMAP process small

    configure_logging("imap", settings.log_level)
    run_imap(settings)
    return 0


# Administration --------------------------------------------------------------------------------

def _db(settings: Settings):
    from mailkite import components

    return components.database(settings)


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from store.migrate import upgrade
    from store.db import Database

    db = Database(settings.resolved_database_url)
    print(f"database at revision {upgrade(db)}")
    return 0


def cmd_domain_add(settings: Settings, args: argparse.Namespace) -> int:
    from store.domains import add_domain

    d = add_domain(_db(settings), args.name, zero_retention=args.zero_retention)
    mode = "zero-retention" if d.zero_retention else "stored"
    print(f"added {d.name} ({mode}); point its MX record at {settings.hostname}")
    return 0


def cmd_domain_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.domains import list_domains

    rows = [[d.name, "zero-retention" if d.zero_retention else "stored", "yes" if d.verified else "no"]
            for d in list_domains(_db(settings))]
    print(_table(["DOMAIN", "RETENTION", "VERIFIED"], rows))
    return 0


def cmd_domain_set(settings: Settings, args: argparse.Namespace) -> int:
    from store.domains import update_policy

    pairs = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"expected key=value, got {item!r}")
        pairs[key.strip().replace("-", "_")] = value
    d = update_policy(_db(settings), args.name, pairs)
    print(_policy_text(d))
    return 0


def cmd_domain_show(settings: Settings, args: argparse.Namespace) -> int:
    from store.domains import get_domain

    print(_policy_text(get_domain(_db(settings), args.name)))
    return 0


def _policy_text(d) -> str:
    lines = [f"{d.name}: {'zero-retention' if d.zero_retention else 'stored'}, "
             f"{'verified' if d.verified else 'not verified'}"]
    for key, value in d.policy.to_json().items():
        shown = ",".join(value) if isinstance(value, list) else ("none" if value is None else value)
        if isinstance(value, bool):
            shown = "on" if value else "off"
        lines.append(f"  {key} = {shown}")
    return "\n".join(lines)


def cmd_domain_verify(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from inbound.dns import DnsError
    from mailkite import components
    from store.domains import get_domain, normalize_domain, set_verified

    db = _db(settings)
    name = get_domain(db, args.name).name
    resolver = components.resolver(settings)
    try:
        mx = asyncio.run(resolver.mx(name))
    except DnsError as exc:
        raise CliError(f"cannot verify {name}: DNS lookup failed ({exc})") from None
    ours = normalize_domain(settings.hostname) if "." in settings.hostname else settings.hostname.lower()
    hosts = [h for _, h in mx]
    ok = ours in hosts
    set_verified(db, name, ok)
    if not ok:
        if not hosts:
            raise CliError(f"{name} is not verified: it has no MX record (publish one pointing at {ours})")
        raise CliError(f"{name} is not verified: its MX points at {', '.join(hosts)}, not {ours}")
    print(f"{name} verified: MX {ours}")
    return 0


def cmd_webhook_add(settings: Settings, args: argparse.Namespace) -> int:
    from delivery.signing import generate_secret
    from mailkite import components
    from store.endpoints import add_endpoint

    secret = generate_secret()
    ep = add_endpoint(_db(settings), components.secret_box(settings), args.url, secret, domain=args.domain)
    print(f"added endpoint {ep.id} -> {ep.url}" + (f" (domain {ep.domain})" if ep.domain else " (all domains)"))
    print(f"signing secret (shown once): {secret}")
    return 0


def cmd_webhook_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.endpoints import list_endpoints

    rows = []
    for ep in list_endpoints(_db(settings)):
        state = "enabled" if ep.enabled else f"disabled: {ep.disabled_reason}"
        if ep.enabled and ep.failing_since:
            state = f"enabled (failing since {_ts(ep.failing_since)})"
        rows.append([ep.id, ep.url, ep.domain or "*", state])
    print(_table(["ID", "URL", "DOMAIN", "STATE"], rows))
    return 0


def cmd_webhook_enable(settings: Settings, args: argparse.Namespace) -> int:
    from store.endpoints import enable_endpoint

    enable_endpoint(_db(settings), args.id)
    print(f"endpoint {args.id} enabled")
    return 0


def cmd_webhook_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from delivery.signing import generate_secret
    from mailkite import components
    from store.endpoints import rotate_secret

    secret = generate_secret()
    rotate_secret(_db(settings), components.secret_box(settings), args.id, secret)
    print(f"new signing secret (shown once): {secret}")
    print("deliveries are signed with the new and the previous secret until you rotate again")
    return 0


def cmd_events_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.events import list_events

    rows = [[e.id, e.message_id, e.state, str(e.attempts), str(e.last_status_code or "-"),
             _ts(e.created_at), (e.last_error or "")[:60]]
            for e in list_events(_db(settings), failed_only=args.failed, limit=args.limit)]
    print(_table(["EVENT", "MESSAGE", "STATE", "ATTEMPTS", "LAST", "CREATED", "ERROR"], rows))
    return 0


def cmd_events_replay(settings: Settings, args: argparse.Namespace) -> int:
    from store.events import replay

    replay(_db(settings), args.id)
    print(f"event {args.id} queued for delivery again")
    return 0


def cmd_app_password_create(settings: Settings, args: argparse.Namespace) -> int:
    from store.app_passwords import create_app_password

    info, secret = create_app_password(_db(settings), args.label, args.scope)
    print(f"created app-password {info.id} ({info.label}) for {info.scope}")
    print(f"IMAP password (shown once): {secret}")
    print(f"use it with any username at {settings.hostname}:{settings.imap_listen.rsplit(':', 1)[-1]} (implicit TLS)")
    return 0


def cmd_app_password_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.app_passwords import list_app_passwords

    rows = [[p.id, p.label, p.scope, p.prefix + "…", _ts(p.created_at), _ts(p.last_used_at),
             f"revoked {_ts(p.revoked_at)}" if p.revoked_at else "active"]
            for p in list_app_passwords(_db(settings))]
    print(_table(["ID", "LABEL", "SCOPE", "PASSWORD", "CREATED", "LAST USED", "STATE"], rows))
    return 0


def cmd_app_password_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from imapwindow.notify import publish_once
    from mailkite import components
    from store.app_passwords import revoke_app_password

    info = revoke_app_password(_db(settings), args.id)
    # Open sessions end at their next command anyway; the event also ends sessions sitting in IDLE
    # at once (without it, within the IMAP process's safety refresh, a minute).
    redis_url = components.redis_url(settings)
    if redis_url:
        publish_once(redis_url, {"t": "revoked", "id": info.id})
    print(f"app-password {info.id} ({info.label}) revoked; its IMAP sessions end at their next command")
    return 0


# Parser ----------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``mailkite: …``) and exit status 2."""

    def error(self, message: str):
        print(f"mailkite: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mailkite", description="Self-hosted, webhook-first inbound email.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(parent, name: str, func: Callable, help_text: str):
        sp = parent.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        return sp

    add(sub, "serve", cmd_serve, "run every role (MX, IMAP, web, workers; embedded Redis when none is configured)")
    add(sub, "mx", cmd_mx, "run the MX listener (and the outbox relay)")
    add(sub, "imap", cmd_imap, "run the IMAP window")
    add(sub, "web", cmd_web, "run the web role")
    w = add(sub, "worker", cmd_worker, "run a webhook delivery worker")
    w.add_argument("--no-relay", action="store_true", help="do not run an outbox relay in this worker")
    w.add_argument("--burst", action="store_true", help="exit when the queue is empty")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", metavar="ACTION")
    db.required = True
    add(db, "upgrade", cmd_db_upgrade, "migrate the database to the newest schema")

    dom = sub.add_parser("domain", help="receiving domains").add_subparsers(dest="domain_command", metavar="ACTION")
    dom.required = True
    a = add(dom, "add", cmd_domain_add, "receive mail for a domain")
    a.add_argument("name")
    a.add_argument("--zero-retention", action="store_true", help="keep nothing at rest; deliver in-session")
    add(dom, "list", cmd_domain_list, "list domains")
    st = add(dom, "set", cmd_domain_set, "change per-domain settings (key=value …)")
    st.add_argument("name")
    st.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    sh = add(dom, "show", cmd_domain_show, "show a domain and its settings")
    sh.add_argument("name")
    v = add(dom, "verify", cmd_domain_verify, "check that the domain's MX record points at MAILKITE_HOSTNAME")
    v.add_argument("name")

    wh = sub.add_parser("webhook", help="webhook endpoints").add_subparsers(dest="webhook_command", metavar="ACTION")
    wh.required = True
    a = add(wh, "add", cmd_webhook_add, "add an endpoint (prints its whsec_ signing secret once)")
    a.add_argument("url")
    a.add_argument("--domain", help="only messages for this domain (default: all domains)")
    add(wh, "list", cmd_webhook_list, "list endpoints")
    e = add(wh, "enable", cmd_webhook_enable, "re-enable a disabled endpoint")
    e.add_argument("id")
    r = add(wh, "rotate-secret", cmd_webhook_rotate, "issue a new signing secret (the old one keeps signing)")
    r.add_argument("id")

    ap = sub.add_parser("app-password", help="IMAP app-passwords").add_subparsers(dest="ap_command", metavar="ACTION")
    ap.required = True
    c = add(ap, "create", cmd_app_password_create, "create an mk_imap_ app-password (printed once)")
    c.add_argument("--label", required=True, help="what it is for, e.g. 'Thunderbird on my laptop'")
    c.add_argument("--scope", required=True, metavar="ADDRESS_OR_DOMAIN",
                   help="one address (bob@example.com) or a whole domain (example.com)")
    add(ap, "list", cmd_app_password_list, "list app-passwords (never the secrets)")
    rv = add(ap, "revoke", cmd_app_password_revoke, "revoke an app-password; its sessions end")
    rv.add_argument("id")

    ev = sub.add_parser("events", help="webhook events").add_subparsers(dest="events_command", metavar="ACTION")
    ev.required = True
    ls = add(ev, "list", cmd_events_list, "list recent events")
    ls.add_argument("--failed", action="store_true", help="only events whose retries ran out")
    ls.add_argument("--limit", type=int, default=50)
    rp = add(ev, "replay", cmd_events_replay, "deliver an event again")
    rp.add_argument("id")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mailkite`` console script."""
    from store.blobs import BlobError
    from store.errors import SecretDecryptError, StoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.func(settings, args) or 0)
    except (CliError, ConfigError, StoreError, BlobError, SecretDecryptError) as exc:
        print(f"mailkite: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            first_line = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            print(f"mailkite: database unavailable: {first_line}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
