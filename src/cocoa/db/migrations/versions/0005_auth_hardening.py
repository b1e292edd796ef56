"""Auth hardening (issue 14): revocable sessions, token expiry, case-insensitive user names

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:20:00

* ``users.username_key``: the name as compared (NFKC, then casefold), unique,
  so "Admin" and "admin" are one user on both backends. A database that
  already holds two names equal but for case cannot be migrated without a
  person choosing which one stays: the upgrade refuses *before changing
  anything*, naming the users and saying how to fix it, and can simply be
  run again afterwards.
* The column is added with a default of '' because SQLite can only add a
  NOT NULL column that has one; rebuilding ``users`` instead (Alembic's batch
  mode) would drop the old table, and with foreign keys on that cascades into
  ``api_tokens``.
* ``api_tokens.expires_at`` (null: never), ``sessions`` (server-side web
  sessions, so logout ends one) and ``login_failures`` (the login throttle's
  counters, shared by every server process).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY_LENGTH = 128


def _key(username: str) -> str:
    """Frozen copy of ``cocoa.auth.username_key`` as of this revision."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()


def _user_keys(conn: sa.Connection) -> dict[int, str]:
    """Every user's key; raises, naming the users, when keys collide or overflow."""
    rows = conn.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all()
    keys = {int(row.id): _key(row.username) for row in rows}
    names = {int(row.id): row.username for row in rows}
    groups: dict[str, list[int]] = defaultdict(list)
    for user_id, key in keys.items():
        groups[key].append(user_id)
    clashes = [ids for ids in groups.values() if len(ids) > 1]
    too_long = [user_id for user_id, key in keys.items() if len(key) > KEY_LENGTH]
    if clashes or too_long:
        raise RuntimeError(_refusal(clashes, too_long, names))
    return keys


def _refusal(clashes: list[list[int]], too_long: list[int], names: dict[int, str]) -> str:
    lines = ["Migration 0005 stopped before changing anything: user names are now "
             "case-insensitive, and these would no longer be distinct:"]
    for ids in clashes:
        lines.append("  " + ", ".join(f"{names[i]!r} (id {i})" for i in ids))
    for user_id in too_long:
        lines.append(f"  {names[user_id]!r} (id {user_id}) is longer than {KEY_LENGTH} characters "
                     "once case-folded")
    lines.append("Rename or delete all but one of each group, e.g. "
                 "UPDATE users SET username = 'admin-old' WHERE id = <id>; "
                 "then run `cocoa db upgrade` again.")
    return "\n".join(lines)


def upgrade() -> None:
    conn = op.get_bind()
    keys = _user_keys(conn)  # first: a refusal must leave the schema untouched
    op.add_column("users", sa.Column("username_key", sa.String(length=KEY_LENGTH), nullable=False,
                                     server_default=""))
    for user_id, key in keys.items():
        conn.execute(sa.text("UPDATE users SET username_key = :key WHERE id = :id"),
                     {"key": key, "id": user_id})
    op.create_index("uq_users_username_key", "users", ["username_key"], unique=True)
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_column("api_tokens", "expires_at")
    op.drop_index("uq_users_username_key", table_name="users")
    op.drop_column("users", "username_key")
