"""The Alembic migrations build the schema the models describe (store/models.py), on PostgreSQL,
where column types are enforced: a model change without its migration fails here, not in
production with a 451 on every message (as varchar limits did before migration 0007)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.db import Database
from store.migrate import current_revision, head_revision
from store.models import Base

# Differences that are deliberate: indexes the migrations create with SQL the models do not
# describe (an expression index, a second index for IMAP's CONDSTORE reads), and the app-password
# prefix, unique by an index rather than a named constraint.
_MODEL_LESS = {"ix_messages_domain_modseq", "ix_messages_inbox_lower_uid", "ix_app_passwords_prefix"}


def _differences(db: Database) -> list:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    out = []
    for item in diff:
        # A column change is a list of one tuple; a table, index or constraint change is a tuple.
        op = item[0] if isinstance(item, list) else item
        if op[0] in ("remove_index", "add_index") and op[1].name in _MODEL_LESS:
            continue
        if op[0] == "add_constraint" and [c.name for c in op[1].columns] == ["prefix"]:
            continue
        out.append(op)
    return out


def test_postgresql_schema_matches_the_models(pg_database):
    db = Database(pg_database.url)
    try:
        assert current_revision(db) == head_revision()
        assert _differences(db) == []
    finally:
        db.dispose()
