"""Accounts. One default account exists until multi-account management lands."""

from __future__ import annotations

from sqlalchemy.orm import Session

from store.models import Account

DEFAULT_ACCOUNT_ID = "acc_default"


def ensure_default_account(session: Session) -> Account:
    """Return the default account, creating it on first use."""
    account = session.get(Account, DEFAULT_ACCOUNT_ID)
    if account is None:
        account = Account(id=DEFAULT_ACCOUNT_ID, name="default")
        session.add(account)
        session.flush()
    return account
