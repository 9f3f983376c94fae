"""App-passwords at rest (store/app_passwords.py): shown once, stored only as an Argon2id hash with a
public prefix; scope checks; revoked and unverified refusals; on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from store.app_passwords import (
    CheckOutcome, VerifiedCache, check_password, create_app_password, credential_state, list_app_passwords,
    revoke_app_password,
)
from store.domains import add_domain, set_verified
from store.errors import InvalidInput, NotFound
from store.models import AppPassword


def test_create_check_revoke(db):
    add_domain(db, "example.test")
    set_verified(db, "example.test", True)
    info, secret = create_app_password(db, "Thunderbird", "Bob@Example.TEST")
    assert re.fullmatch(r"mk_imap_[A-Za-z0-9]{40}", secret)
    assert info.scope == "bob@example.test" and info.prefix == secret[:16]
    with db.read() as s:
        row = s.scalar(select(AppPassword))
    assert secret not in row.password_hash and row.password_hash.startswith("$argon2id$")
    result = check_password(db, secret)
    assert result.outcome is CheckOutcome.VALID and result.credential.address == "bob@example.test"
    assert check_password(db, secret[:-1] + ("x" if secret[-1] != "x" else "y")).outcome is CheckOutcome.UNKNOWN
    assert check_password(db, "hunter2").outcome is CheckOutcome.UNKNOWN
    # The verification cache remembers this very password; another one with the same prefix is
    # still checked against the hash (and refused).
    cache = VerifiedCache()
    assert check_password(db, secret, cache=cache).outcome is CheckOutcome.VALID
    assert cache.matches(secret, row.password_hash)
    assert check_password(db, secret, cache=cache).outcome is CheckOutcome.VALID
    same_prefix = "mk_imap_" + secret[8:16] + "0" * 32
    assert not cache.matches(same_prefix, row.password_hash)
    assert check_password(db, same_prefix, cache=cache).outcome is CheckOutcome.UNKNOWN
    revoke_app_password(db, info.id)
    assert check_password(db, secret).outcome is CheckOutcome.REVOKED
    assert credential_state(db, result.credential) is CheckOutcome.REVOKED
    assert list_app_passwords(db)[0].revoked_at is not None


def test_scope_and_domain_states(db):
    add_domain(db, "zero.test", zero_retention=True)
    add_domain(db, "new.test")
    with pytest.raises(NotFound):
        create_app_password(db, "x", "nosuch.test")
    with pytest.raises(InvalidInput):
        create_app_password(db, "", "new.test")
    with pytest.raises(InvalidInput):
        create_app_password(db, "x", "not a domain")
    _, zero = create_app_password(db, "x", "zero.test")
    _, new = create_app_password(db, "x", "new.test")
    assert check_password(db, zero).outcome is CheckOutcome.DOMAIN_ZERO_RETENTION
    assert check_password(db, new).outcome is CheckOutcome.DOMAIN_NOT_VERIFIED
