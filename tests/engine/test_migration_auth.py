"""Migration 0005 (issue 14): user names become case-insensitive.

A database holding two users whose names differ only in case cannot be
migrated without someone choosing: the upgrade must refuse loudly, naming
them, change nothing, and succeed once they are told apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cocoa.db.engine import make_engine
from cocoa.db.migrate import current_revision, upgrade


def _add_user(engine: sa.Engine, username: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (username, role, created_at) VALUES (:u, 'viewer', :t)"),
                     {"u": username, "t": datetime.now(UTC)})


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


def test_names_equal_but_for_case_stop_the_upgrade_until_resolved(db_url: str) -> None:
    upgrade(db_url, "0004")
    engine = make_engine(db_url)
    try:
        for name in ("admin", "Admin", "carol", "STRASSE", "straße"):
            _add_user(engine, name)
        with pytest.raises(RuntimeError) as refused:
            upgrade(db_url, "0005")
        message = str(refused.value)
        assert "'admin' (id 1), 'Admin' (id 2)" in message and "'STRASSE' (id 4), 'straße' (id 5)" in message
        assert "carol" not in message and "cocoa db upgrade" in message
        assert current_revision(engine) == "0004" and "username_key" not in _columns(engine, "users")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET username = 'admin-old' WHERE id = 2"))
            conn.execute(sa.text("DELETE FROM users WHERE id = 5"))
        upgrade(db_url, "0005")
        with engine.connect() as conn:
            keys = dict(conn.execute(sa.text("SELECT username, username_key FROM users")).all())
        assert keys == {"admin": "admin", "admin-old": "admin-old", "carol": "carol", "STRASSE": "strasse"}
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (username, username_key, role, created_at) "
                                 "VALUES ('Carol', 'carol', 'viewer', :t)"), {"t": datetime.now(UTC)})
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        from alembic import command

        from cocoa.db.migrate import alembic_config

        command.downgrade(alembic_config(db_url), "0004")
        assert "expires_at" not in _columns(engine, "api_tokens")
        assert not {"sessions", "login_failures"} & set(sa.inspect(engine).get_table_names())
        upgrade(db_url)
        assert "username_key" in _columns(engine, "users")
    finally:
        engine.dispose()
