"""Schema migrations with Alembic, driven from code (``mailkite db upgrade``; ``serve`` runs it)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    """An Alembic :class:`Config` pointing at our migrations and ``db``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> str:
    """Migrate ``db`` to ``revision`` (default the newest); returns the revision now current.

    Safe to run concurrently from several processes on PostgreSQL (an advisory lock serialises
    them); on SQLite the write lock does the same.
    """
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(db)


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(Config_for_scripts()).get_current_head()


def Config_for_scripts() -> Config:  # noqa: N802 - small helper
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg
