"""One IMAP session: the state machine of RFC 3501 §3 and one ``do_<command>`` per command.

Every ``do_*`` method writes its untagged responses through ``emit`` and returns a :class:`Done`
(the text and response code of the tagged ``OK``); refusals and syntax errors are raised as
:mod:`imapwindow.errors` values, which render their own tagged ``NO``/``BAD`` (or ``BYE``).

Read-mostly (DESIGN.md "IMAP window"): ``\\Seen``, ``\\Flagged`` and ``\\Answered`` persist (with
RFC 7162 mod-sequences) and every session sees them; ``\\Deleted``, ``\\Draft`` and keywords last for
the session; EXPUNGE removes nothing; APPEND, COPY, MOVE and folder changes answer ``NO [CANNOT]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from imapwindow import fetch as fetchmod
from imapwindow import search as searchmod
from imapwindow.context import LARGE_RESPONSE, ServerContext
from imapwindow.errors import BadCommand, CloseConnection, CommandRefused
from imapwindow.mailbox import MailboxView
from imapwindow.parsing.command import Command
from imapwindow.parsing.sequence import SequenceSet, format_ranges
from imapwindow.responses import astring_out, capability_text, mailbox_out
from store.app_passwords import CheckOutcome, Credential, credential_state
from store.imap import ANSWERED, FLAGGED, MAILBOXES, SEEN, Scope, message_meta, store_flags

log = logging.getLogger("mailkite.imap")

PERSISTED = {"\\Seen": SEEN, "\\Flagged": FLAGGED, "\\Answered": ANSWERED}
SPECIAL_USE = {"INBOX": (), "Sent": ("\\Sent",)}
DELIMITER = "/"
RESPONSE_CHUNK = 2 * 1024 * 1024
CANNOT_FOLDERS = "Folders cannot be created, deleted or renamed: this account has INBOX and Sent only"
CANNOT_COPY = "Messages cannot be copied, moved or uploaded: IMAP here is a read window (flags only)"

Emit = Callable[[bytes], Awaitable[None]]
NextLine = Callable[[float | None], Awaitable[bytes | None]]


@dataclass(frozen=True)
class Done:
    """The tagged OK of a completed command: ``tag OK [code] text``."""

    text: str
    code: str | None = None

    def render(self, tag: bytes) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return tag + b" OK " + f"{code}{self.text}".encode() + b"\r\n"


# What do_idle returns: no tagged answer yet; the connection is now in IDLE (RFC 2177).
IDLING = Done("idling")


class Selected:
    """A session's selection: the shared view plus what this session has announced."""

    __slots__ = ("view", "readonly", "known", "reported_modseq", "session_flags", "own")

    def __init__(self, view: MailboxView, readonly: bool) -> None:
        self.view = view
        self.readonly = readonly
        self.known = len(view)
        self.reported_modseq = view.watermark
        self.session_flags: dict[int, set[str]] = {}
        self.own: dict[int, int] = {}  # index -> mod-sequence our own STORE/FETCH already reported

    def session_flags_of(self, uid: int) -> frozenset[str]:
        return frozenset(self.session_flags.get(uid, ()))


class Session:
    """State and commands of one connection. ``client_address`` keys the login throttle."""

    # Slots: one session per connection, and 1,000 idle connections must fit in 100 MB.
    __slots__ = ("ctx", "client_address", "emit", "next_line", "on_change", "credential", "scope", "selected",
                 "condstore", "logged_out", "revoked")

    def __init__(self, ctx: ServerContext, client_address: str, emit: Emit, next_line: NextLine,
                 on_change: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.client_address = client_address
        self.emit = emit
        self.next_line = next_line
        # Called (on the event loop) when the selected mailbox changed or the password was revoked:
        # the connection pushes updates to a client in IDLE (others get them with their next answer).
        self.on_change = on_change
        self.credential: Credential | None = None
        self.scope: Scope | None = None
        self.selected: Selected | None = None
        self.condstore = False
        self.logged_out = False
        self.revoked = False

    def mark_revoked(self) -> None:
        """The app-password was revoked: the session ends at once if in IDLE, else at its next command."""
        self.revoked = True
        self.changed()

    def changed(self) -> None:
        """A view listener: the selected mailbox changed (or the session must end)."""
        if self.on_change is not None:
            self.on_change()

    # Dispatch -----------------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return self.credential is not None

    async def execute(self, cmd: Command) -> Done:
        """Run one command; raises :class:`ImapError` values for refusals."""
        handler = getattr(self, f"do_{cmd.name.lower()}", None)
        if handler is None:
            raise BadCommand(f"unknown command {cmd.name}")
        if self.authenticated and cmd.name != "LOGOUT":
            await self._check_credential()
        if cmd.name in _ANY_STATE:
            pass
        elif cmd.name in _NOT_AUTH:
            if self.authenticated:
                raise BadCommand("already logged in")
        else:
            if not self.authenticated:
                raise BadCommand(f"{cmd.name} needs a login first")
            if cmd.name in _SELECTED and self.selected is None:
                raise BadCommand(f"{cmd.name} needs a selected mailbox (SELECT INBOX)")
        done = await handler(cmd)
        if self.selected is not None and cmd.name not in ("LOGOUT", "IDLE"):
            # New messages and other sessions' flag changes ride along with every answer (RFC 3501
            # §7: EXISTS and FETCH may come at any time; we never send EXPUNGE).
            await self.flush_updates()
        return done

    async def _check_credential(self) -> None:
        """Revoked passwords end the session at their next command (DESIGN.md "App-passwords")."""
        state = await asyncio.to_thread(credential_state, self.ctx.db, self.credential)
        if state is not CheckOutcome.VALID:
            raise CloseConnection("this app-password has been revoked" if state is CheckOutcome.REVOKED
                                  else "this domain is no longer served over IMAP")

    # Any state ----------------------------------------------------------------------------------

    async def do_capability(self, cmd: Command) -> Done:
        await self.emit(b"* CAPABILITY " + capability_text(self.authenticated).encode() + b"\r\n")
        return Done("CAPABILITY completed")

    async def do_noop(self, cmd: Command) -> Done:
        return Done("NOOP completed")

    async def do_logout(self, cmd: Command) -> Done:
        self.logged_out = True
        await self.emit(b"* BYE Logging out\r\n")
        return Done("LOGOUT completed")

    async def do_id(self, cmd: Command) -> Done:
        # RFC 2971: the server's identification; the client's fields are not kept.
        await self.emit(b'* ID ("name" "mailkite" "vendor" "mailkite" "support-url" '
                        b'"https://github.com/mailkite")\r\n')
        return Done("ID completed")

    async def do_starttls(self, cmd: Command) -> Done:
        raise BadCommand("TLS is already active (port 993 is implicit TLS)")

    # Not authenticated --------------------------------------------------------------------------

    async def do_login(self, cmd: Command) -> Done:
        await self._log_in(cmd.args["password"])
        return Done("Logged in", "CAPABILITY " + capability_text(True))

    async def do_authenticate(self, cmd: Command) -> Done:
        if cmd.args["mechanism"] != "PLAIN":
            raise CommandRefused("only AUTHENTICATE PLAIN is supported", "CANNOT")
        response = cmd.args["initial"]
        if response is None:  # RFC 4959: no initial response, ask for it
            await self.emit(b"+ \r\n")
            line = await self.next_line(self.ctx.limits.preauth_timeout_s)
            if line is None:
                raise CloseConnection("connection closed during AUTHENTICATE")
            if line.strip() == b"*":
                raise BadCommand("AUTHENTICATE cancelled")
            response = line.strip()
        try:
            decoded = base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            raise BadCommand("the PLAIN response is not valid base64") from None
        fields = decoded.split(b"\x00")
        if len(fields) != 3:  # RFC 4616 §2: [authzid] NUL authcid NUL passwd
            raise BadCommand("the PLAIN response must be authzid NUL authcid NUL password")
        await self._log_in(fields[2])
        return Done("Logged in", "CAPABILITY " + capability_text(True))

    async def _log_in(self, password: bytes) -> None:
        credential = await self.ctx.authenticator.login(password, self.client_address)
        counts = self.ctx.account_connections
        if counts[credential.account_id] >= self.ctx.limits.max_connections_per_account:
            raise CommandRefused(f"too many connections for this account "
                                 f"(at most {self.ctx.limits.max_connections_per_account})", "LIMIT")
        counts[credential.account_id] += 1
        self.credential = credential
        self.scope = Scope(credential.account_id, credential.domain_id, credential.address)
        log.info("imap.login", extra={"kv": {"app_password": credential.id, "scope": credential.scope,
                                             "client": self.client_address}})

    def release(self) -> None:
        """The connection ended: drop the selection and the account's connection count."""
        self._unselect()
        if self.credential is not None:
            counts = self.ctx.account_connections
            counts[self.credential.account_id] -= 1
            if counts[self.credential.account_id] <= 0:
                del counts[self.credential.account_id]

    # Authenticated ------------------------------------------------------------------------------

    async def do_enable(self, cmd: Command) -> Done:
        enabled = [c for c in cmd.args["capabilities"] if c == "CONDSTORE"]
        if enabled:
            self.condstore = True
        await self.emit(b"* ENABLED" + b"".join(b" " + c.encode() for c in enabled) + b"\r\n")
        return Done("ENABLE completed")

    async def do_namespace(self, cmd: Command) -> Done:
        # RFC 2342: one personal namespace, no others.
        await self.emit(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return Done("NAMESPACE completed")

    async def do_select(self, cmd: Command) -> Done:
        return await self._select(cmd, readonly=False)

    async def do_examine(self, cmd: Command) -> Done:
        return await self._select(cmd, readonly=True)

    async def _select(self, cmd: Command, *, readonly: bool) -> Done:
        name = cmd.args["mailbox"]
        self._unselect()
        if name not in MAILBOXES:
            raise CommandRefused(f"no mailbox {name}: there are INBOX and Sent", "NONEXISTENT")
        if cmd.args.get("condstore"):
            self.condstore = True
        view = await self.ctx.registry.acquire(self.scope, name, self.credential.domain)
        sel = Selected(view, readonly)
        self.selected = sel
        view.listeners.add(self.changed)
        out = [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"]
        if readonly:
            out.append(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n")
        else:
            out.append(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen)] \\Answered, \\Flagged and \\Seen "
                       b"are kept; other flags last for this session\r\n")
        out.append(b"* %d EXISTS\r\n* 0 RECENT\r\n" % sel.known)
        first_unseen = next((i for i in range(sel.known) if not view.flags[i] & SEEN), None)
        if first_unseen is not None:
            out.append(b"* OK [UNSEEN %d] First unseen\r\n" % (first_unseen + 1))
        out.append(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % view.uidvalidity)
        out.append(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % view.uidnext())
        out.append(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % view.highest_modseq)
        await self.emit(b"".join(out))
        return Done(f"{'EXAMINE' if readonly else 'SELECT'} completed", "READ-ONLY" if readonly else "READ-WRITE")

    def _unselect(self) -> None:
        sel = self.selected
        if sel is not None:
            sel.view.listeners.discard(self.changed)
            self.ctx.registry.release(sel.view)
            self.selected = None

    async def do_create(self, cmd: Command) -> Done:
        raise CommandRefused(CANNOT_FOLDERS, "CANNOT")

    async def do_delete(self, cmd: Command) -> Done:
        raise CommandRefused(CANNOT_FOLDERS, "CANNOT")

    async def do_rename(self, cmd: Command) -> Done:
        raise CommandRefused(CANNOT_FOLDERS, "CANNOT")

    async def do_subscribe(self, cmd: Command) -> Done:
        if cmd.args["mailbox"] not in MAILBOXES:
            raise CommandRefused(f"no mailbox {cmd.args['mailbox']}", "NONEXISTENT")
        return Done("SUBSCRIBE completed (INBOX and Sent are always subscribed)")

    async def do_unsubscribe(self, cmd: Command) -> Done:
        if cmd.args["mailbox"] not in MAILBOXES:
            raise CommandRefused(f"no mailbox {cmd.args['mailbox']}", "NONEXISTENT")
        return Done("UNSUBSCRIBE completed (INBOX and Sent stay subscribed)")

    async def do_list(self, cmd: Command) -> Done:
        a = cmd.args
        lsub = a.get("lsub", False)
        selection = set(a["selection"])
        unknown = selection - {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
        if unknown:
            raise BadCommand(f"unknown LIST selection option {sorted(unknown)[0]}")
        if selection == {"RECURSIVEMATCH"}:
            raise BadCommand("RECURSIVEMATCH needs another selection option (RFC 5258 section 3)")
        returns = set(a["returns"])
        unknown = returns - {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}
        if unknown:
            raise BadCommand(f"unknown LIST return option {sorted(unknown)[0]}")
        name = "LSUB" if lsub else "LIST"
        out: list[bytes] = []
        if a["patterns"] == [""] and not lsub:
            # RFC 3501 §6.3.8: the hierarchy delimiter and root.
            await self.emit(b'* LIST (\\Noselect) "/" ""\r\n')
            return Done("LIST completed")
        status_lines: list[bytes] = []
        for mbox in MAILBOXES:
            if not any(_list_match(a["reference"] + p, mbox) for p in a["patterns"]):
                continue
            if "SPECIAL-USE" in selection and not SPECIAL_USE[mbox]:
                continue
            attrs = ["\\HasNoChildren"]
            if "SUBSCRIBED" in selection or "SUBSCRIBED" in returns:
                attrs.append("\\Subscribed")
            attrs.extend(SPECIAL_USE[mbox])
            if lsub:
                attrs = [x for x in attrs if x != "\\Subscribed"]
            out.append(f"* {name} ({' '.join(attrs)}) \"{DELIMITER}\" ".encode() + mailbox_out(mbox) + b"\r\n")
            if "STATUS" in returns and a["status_items"]:
                out.append(await self._status_line(mbox, a["status_items"]))
        await self.emit(b"".join(out + status_lines))
        return Done(f"{name} completed")

    async def do_lsub(self, cmd: Command) -> Done:
        return await self.do_list(cmd)

    async def do_status(self, cmd: Command) -> Done:
        name = cmd.args["mailbox"]
        if name not in MAILBOXES:
            raise CommandRefused(f"no mailbox {name}: there are INBOX and Sent", "NONEXISTENT")
        await self.emit(await self._status_line(name, cmd.args["items"]))
        return Done("STATUS completed")

    async def _status_line(self, name: str, items: list[str]) -> bytes:
        known = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"}
        bad = [i for i in items if i not in known]
        if bad:
            raise BadCommand(f"unknown STATUS item {bad[0]}")
        if self.selected is not None and self.selected.view.key.mailbox == name:
            await self.selected.view.refresh(self.ctx.db)
        view = await self.ctx.registry.acquire(self.scope, name, self.credential.domain)
        try:
            values = {"MESSAGES": len(view), "RECENT": 0, "UIDNEXT": view.uidnext(),
                      "UIDVALIDITY": view.uidvalidity, "UNSEEN": sum(1 for f in view.flags if not f & SEEN),
                      "HIGHESTMODSEQ": view.highest_modseq}
        finally:
            self.ctx.registry.release(view)
        if "HIGHESTMODSEQ" in items:
            self.condstore = True
        body = " ".join(f"{i} {values[i]}" for i in items)
        return b"* STATUS " + mailbox_out(name) + f" ({body})\r\n".encode()

    async def do_append(self, cmd: Command) -> Done:
        raise CommandRefused("APPEND is not available: this mailbox is read-only except for flags", "CANNOT")

    async def do_idle(self, cmd: Command) -> Done:
        """RFC 2177 IDLE: ``+ idling`` and the updates so far, then :data:`IDLING`. The connection
        holds the IDLE state without a task: it calls :meth:`flush_updates` when :meth:`changed` fires,
        ends the session when :attr:`revoked`, and answers the ``DONE`` line itself
        (:meth:`end_idle`); after ``idle_timeout_s`` the server ends IDLE as RFC 2177 §3 asks."""
        if self.revoked:
            raise CloseConnection("this app-password has been revoked")
        await self.emit(b"+ idling\r\n")
        await self.flush_updates()
        return IDLING

    async def end_idle(self, line: bytes) -> Done:
        """The line that ended IDLE: ``DONE`` (RFC 2177 §3) answers OK; anything else is BAD."""
        if line.strip().upper() != b"DONE":
            raise BadCommand("expected DONE to end IDLE")
        await self.flush_updates()
        return Done("IDLE terminated")

    # Selected -----------------------------------------------------------------------------------

    async def do_check(self, cmd: Command) -> Done:
        return Done("CHECK completed")

    async def do_close(self, cmd: Command) -> Done:
        self._unselect()  # nothing is expunged (DESIGN.md: deleting does not stick)
        return Done("CLOSE completed")

    async def do_unselect(self, cmd: Command) -> Done:
        self._unselect()
        return Done("UNSELECT completed")

    async def do_expunge(self, cmd: Command) -> Done:
        sel = self.selected
        if sel.readonly:
            raise CommandRefused("the mailbox is read-only (EXAMINE)", "READ-ONLY")
        limit_uids = None
        if cmd.args.get("set") is not None:
            limit_uids = {sel.view.uids[i] for i in self._resolve(cmd.args["set"], uid=True)}
        out = []
        for uid in sorted(sel.session_flags):
            if limit_uids is not None and uid not in limit_uids:
                continue
            flags = sel.session_flags[uid]
            if "\\Deleted" in flags:
                flags.discard("\\Deleted")
                i = sel.view.index_of_uid(uid)
                if i is not None and i < sel.known:
                    out.append(fetchmod.flags_update(i + 1, uid, sel.view.flags[i], frozenset(flags),
                                                     sel.view.modseqs[i] if self.condstore else None,
                                                     with_uid=True))
        if out:
            await self.emit(b"".join(out))
        return Done("EXPUNGE completed: messages are kept (deleting does not stick here)")

    async def do_copy(self, cmd: Command) -> Done:
        raise CommandRefused(CANNOT_COPY, "CANNOT")

    async def do_move(self, cmd: Command) -> Done:
        raise CommandRefused(CANNOT_COPY, "CANNOT")

    def _resolve(self, seq: SequenceSet, *, uid: bool) -> list[int]:
        """Indexes (0-based, ascending, below the announced count) a sequence set names.

        Message numbers above EXISTS are a client error (BAD); UIDs that do not exist are skipped
        (RFC 3501 §6.4.8)."""
        sel = self.selected
        known = sel.known
        found: set[int] = set()
        if uid:
            largest = sel.view.uids[known - 1] if known else 0
            for lo, hi in seq.resolve(largest):
                found.update(sel.view.uid_range(lo, hi, known))
        else:
            for lo, hi in seq.resolve(known):
                if hi > known:
                    raise BadCommand("message sequence number out of range")
                found.update(range(lo - 1, hi))
            if not known and any(a != -1 and b != -1 for a, b in seq.ranges):
                raise BadCommand("the mailbox is empty: no message numbers are valid")
        return sorted(found)

    async def do_fetch(self, cmd: Command) -> Done:
        sel = self.selected
        request = cmd.args["request"]
        idxs = self._resolve(cmd.args["set"], uid=cmd.uid)
        if request.changed_since is not None:
            self.condstore = True
            idxs = [i for i in idxs if sel.view.modseqs[i] > request.changed_since]
        if "MODSEQ" in request.names:
            self.condstore = True
        need = fetchmod.needs(request)
        seen_now: set[int] = set()
        if need.sets_seen and not sel.readonly:
            to_mark = [sel.view.uids[i] for i in idxs if not sel.view.flags[i] & SEEN]
            if to_mark:
                outcome = await asyncio.to_thread(store_flags, self.ctx.db, self.scope, sel.view.key.mailbox,
                                                  to_mark, mode="add", flags=SEEN)
                seen_now = await self._after_store(outcome)
        # Batches: one metadata query and one structure read per batch; message bodies are read
        # while rendering and a batch's output is flushed at ~RESPONSE_CHUNK bytes, so fetching
        # large messages never holds more than about one chunk plus one message in memory.
        batch = self.ctx.limits.fetch_batch
        written = 0
        for start in range(0, len(idxs), batch):
            chunk = idxs[start:start + batch]
            rows = [fetchmod.FetchData(i + 1, sel.view.uids[i], sel.view.flags[i],
                                       sel.session_flags_of(sel.view.uids[i]), sel.view.modseqs[i]) for i in chunk]
            if not need.meta:
                data = b"".join(fetchmod.render(r, request, uid_command=cmd.uid, with_modseq=self.condstore,
                                                flags_changed=r.uid in seen_now) for r in rows)
                written += len(data)
                await self.emit(data)
                continue
            loaded = await asyncio.to_thread(self._load_batch, rows, need)
            while loaded:
                data, loaded = await asyncio.to_thread(self._render_rows, loaded, request, need, cmd.uid, seen_now)
                written += len(data)
                await self.emit(data)
        if written > LARGE_RESPONSE and self.ctx.release_memory is not None:
            await asyncio.to_thread(self.ctx.release_memory)
        return Done(f"{'UID ' if cmd.uid else ''}FETCH completed")

    def _load_batch(self, rows: list[fetchmod.FetchData], need: fetchmod.Needs) -> list[fetchmod.FetchData]:
        """Blocking (worker thread): one batch's metadata rows and stored structures."""
        sel = self.selected
        metas = {m.uid: m for m in message_meta(self.ctx.db, self.scope, sel.view.key.mailbox,
                                                [r.uid for r in rows])}
        structures = {}
        if need.structure:
            structures = self.ctx.structures.get_many([(m.transaction_id, m.raw_key) for m in metas.values()])
        loaded = []
        for r in rows:
            meta = metas.get(r.uid)
            if meta is None:
                continue
            r.meta = meta
            r.flags = meta.flags
            r.modseq = max(r.modseq, meta.modseq)
            r.structure = structures.get(meta.transaction_id)
            if need.structure and r.structure is None:
                log.warning("imap.structure_missing", extra={"kv": {"uid": r.uid}})
                continue
            loaded.append(r)
        return loaded

    def _render_rows(self, rows: list[fetchmod.FetchData], request, need: fetchmod.Needs, uid_command: bool,
                     seen_now: set[int]) -> tuple[bytes, list[fetchmod.FetchData]]:
        """Blocking (worker thread): render rows (reading bodies from the blob store) until about
        :data:`RESPONSE_CHUNK` bytes are ready; returns them and the rows still to do."""
        out = []
        size = 0
        for n, r in enumerate(rows):
            if need.raw and r.meta.raw_key:
                r.raw = self.ctx.blobs.get(r.meta.raw_key)
            line = fetchmod.render(r, request, uid_command=uid_command, with_modseq=self.condstore,
                                   flags_changed=r.uid in seen_now)
            r.raw = None
            out.append(line)
            size += len(line)
            if size >= RESPONSE_CHUNK:
                return b"".join(out), rows[n + 1:]
        return b"".join(out), []

    async def do_store(self, cmd: Command) -> Done:
        sel = self.selected
        if sel.readonly:
            raise CommandRefused("the mailbox is read-only (EXAMINE)", "READ-ONLY")
        a = cmd.args
        if "\\Recent" in a["flags"]:
            raise BadCommand("\\Recent cannot be changed (RFC 3501 section 2.3.2)")
        if a["unchanged_since"] is not None:
            self.condstore = True
        idxs = self._resolve(a["set"], uid=cmd.uid)
        bits = 0
        extra: set[str] = set()
        for f in a["flags"]:
            if f in PERSISTED:
                bits |= PERSISTED[f]
            else:
                extra.add(f)
        mode = a["mode"]
        modified: list[int] = []
        changed_idx: set[int] = set()
        uids = [sel.view.uids[i] for i in idxs]
        if uids and (bits or mode == "replace"):
            outcome = await asyncio.to_thread(store_flags, self.ctx.db, self.scope, sel.view.key.mailbox, uids,
                                              mode=mode, flags=bits, unchanged_since=a["unchanged_since"])
            modified = outcome.modified
            changed_uids = await self._after_store(outcome)
            changed_idx = {i for i in idxs if sel.view.uids[i] in changed_uids}
        skipped = set(modified)
        for i in idxs:
            uid = sel.view.uids[i]
            if uid in skipped:
                continue
            current = sel.session_flags.get(uid, set())
            new = set(extra) if mode == "replace" else (current | extra if mode == "add" else current - extra)
            if new != current:
                changed_idx.add(i)
                if new:
                    sel.session_flags[uid] = new
                else:
                    sel.session_flags.pop(uid, None)
        out = []
        for i in idxs:
            uid = sel.view.uids[i]
            if uid in skipped:
                continue
            if a["silent"] and not (self.condstore and i in changed_idx):
                continue
            out.append(fetchmod.flags_update(i + 1, uid, sel.view.flags[i], sel.session_flags_of(uid),
                                             sel.view.modseqs[i] if self.condstore else None, with_uid=cmd.uid))
        if out:
            await self.emit(b"".join(out))
        if modified:
            code = "MODIFIED " + format_ranges(modified if cmd.uid else
                                               [sel.view.index_of_uid(u) + 1 for u in modified])
            return Done("Some messages were changed by someone else (CONDSTORE)", code)
        return Done(f"{'UID ' if cmd.uid else ''}STORE completed")

    async def _after_store(self, outcome) -> set[int]:
        """Refresh the shared view, remember what this session already reported, tell other processes."""
        sel = self.selected
        if not outcome.changed:
            return set()
        await sel.view.refresh(self.ctx.db)
        changed = set()
        for ch in outcome.changed:
            i = sel.view.index_of_uid(ch.uid)
            if i is not None:
                sel.own[i] = sel.view.modseqs[i]
                changed.add(ch.uid)
        if self.ctx.publisher is not None:
            self.ctx.publisher.flags_changed(self.credential.domain)
        return changed

    async def do_search(self, cmd: Command) -> Done:
        sel = self.selected
        request = cmd.args["request"]
        key = request.key
        if searchmod.uses_modseq(key):
            self.condstore = True
        known = sel.known
        view = sel.view
        largest_uid = view.uids[known - 1] if known else 0
        fast = searchmod.compile_in_memory(key, view.flags, view.uids, view.modseqs, sel.session_flags, known,
                                           largest_uid)
        if fast is not None:
            found = [i for i in range(known) if fast(i)]
            hit_modseq = max((view.modseqs[i] for i in found), default=0)
            numbers = [view.uids[i] for i in found] if cmd.uid else [i + 1 for i in found]
        else:
            cands = [searchmod.Candidate(i + 1, view.uids[i], view.flags[i], sel.session_flags_of(view.uids[i]),
                                         view.modseqs[i]) for i in range(known)]
            need = searchmod.needs(key)
            if need.meta:
                hits = await asyncio.to_thread(self._search_loaded, cands, key, need, known, largest_uid)
            else:
                hits = [c for c in cands if searchmod.matches(key, c, largest_seq=known, largest_uid=largest_uid)]
            numbers = [c.uid if cmd.uid else c.seq for c in hits]
            hit_modseq = max((c.modseq for c in hits), default=0)
        returns = cmd.args.get("returns")
        if returns is not None:
            # RFC 4731 ESEARCH
            parts = [b'* ESEARCH (TAG ' + astring_out(cmd.tag) + b")"]
            if cmd.uid:
                parts.append(b"UID")
            opts = returns or ["ALL"]
            if numbers and "MIN" in opts:
                parts.append(b"MIN %d" % min(numbers))
            if numbers and "MAX" in opts:
                parts.append(b"MAX %d" % max(numbers))
            if "COUNT" in opts:
                parts.append(b"COUNT %d" % len(numbers))
            if numbers and "ALL" in opts:
                parts.append(b"ALL " + format_ranges(numbers).encode())
            if numbers and searchmod.uses_modseq(key):
                parts.append(b"MODSEQ %d" % hit_modseq)
            await self.emit(b" ".join(parts) + b"\r\n")
        else:
            line = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
            if numbers and searchmod.uses_modseq(key):
                line += b" (MODSEQ %d)" % hit_modseq  # RFC 7162 §3.1.5
            await self.emit(line + b"\r\n")
        return Done(f"{'UID ' if cmd.uid else ''}SEARCH completed")

    def _search_loaded(self, cands, key, need, known: int, largest_uid: int):
        """Blocking (worker thread): load what the criteria read, then evaluate."""
        sel = self.selected
        metas = {m.uid: m for m in message_meta(self.ctx.db, self.scope, sel.view.key.mailbox)}
        structures = {}
        if need.headers:
            structures = self.ctx.structures.get_many([(m.transaction_id, m.raw_key) for m in metas.values()])
        hits = []
        for c in cands:
            c.meta = metas.get(c.uid)
            if c.meta is None:
                continue
            c.flags = c.meta.flags
            if need.raw and c.meta.raw_key:
                c.raw = self.ctx.blobs.get(c.meta.raw_key)
            if need.headers:
                c.header = searchmod.header_of(structures.get(c.meta.transaction_id), c.raw)
            if searchmod.matches(key, c, largest_seq=known, largest_uid=largest_uid):
                hits.append(c)
            c.raw = None
        return hits

    # Updates ------------------------------------------------------------------------------------

    async def flush_updates(self) -> None:
        """Send what changed since the last report: ``* n EXISTS`` for new messages, ``* n FETCH
        (FLAGS …)`` for flags changed by other sessions (RFC 3501 §7.3.1, §7.4.2)."""
        sel = self.selected
        if sel is None:
            return
        view = sel.view
        out = []
        old_known = sel.known
        for i in view.changed_since(sel.reported_modseq, old_known):
            if sel.own.get(i) == view.modseqs[i]:
                continue
            uid = view.uids[i]
            out.append(fetchmod.flags_update(i + 1, uid, view.flags[i], sel.session_flags_of(uid),
                                             view.modseqs[i] if self.condstore else None, with_uid=True))
        sel.reported_modseq = view.watermark
        sel.own.clear()
        if len(view) > old_known:
            sel.known = len(view)
            out.append(b"* %d EXISTS\r\n* 0 RECENT\r\n" % sel.known)
        if out:
            await self.emit(b"".join(out))


def _list_match(pattern: str, name: str) -> bool:
    """RFC 3501 §6.3.8 wildcards: ``*`` matches anything, ``%`` anything but the delimiter; INBOX
    matches case-insensitively."""
    regex = "".join(".*" if ch == "*" else ("[^/]*" if ch == "%" else re.escape(ch)) for ch in pattern)
    if re.fullmatch(regex, name):
        return True
    return name == "INBOX" and re.fullmatch(regex, name, re.I) is not None and pattern.upper().startswith("INBOX")


_ANY_STATE = {"CAPABILITY", "NOOP", "LOGOUT", "ID", "STARTTLS"}
_NOT_AUTH = {"LOGIN", "AUTHENTICATE"}
_SELECTED = {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"}

__all__ = ["IDLING", "Done", "Selected", "Session"]
