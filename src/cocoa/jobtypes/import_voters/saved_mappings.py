"""Voter file column mappings saved by name (issue 17).

A campaign gets the same vendor's export again and again: it names the
columns once (``POST /api/v1/voters/mappings``) and then imports with
``mapping=<name>``. A job stores the mapping it resolved (not the name) in
its params, so changing a saved mapping never changes a job already created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cocoa.db.engine import writing
from cocoa.db.tables import saved_mappings
from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files.mapping import parse_mapping

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}")
MAX_SAVED = 500


def check_name(name: object) -> str:
    """A mapping's name: 1-64 letters, digits, spaces, ``_ . -`` (it is
    typed on command lines and in form fields), not starting with ``{``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name.strip()):
        raise InputError(
            "A mapping name is 1-64 characters: letters, digits, spaces, '_', '.' or '-', "
            "starting with a letter or digit (e.g. 'acme-vendor').",
            code="invalid_mapping_name", problem=Problem.UNPROCESSABLE)
    return name.strip()


def resolve_mapping(conn: sa.Connection, value: object) -> tuple[dict[str, str | None] | None,
                                                                 str | None]:
    """(the mapping, its saved name or None) for a request's ``mapping``:
    a JSON object (or its text), or the name of a saved mapping (text that
    is a valid name; anything else is read as JSON)."""
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value.strip()):
        name = value.strip()
        row = conn.execute(sa.select(saved_mappings.c.mapping)
                           .where(saved_mappings.c.name == name)).first()
        if row is None:
            raise unknown_mapping(conn, name, " (save one with POST /api/v1/voters/mappings, "
                                  "or send the mapping itself as a JSON object)")
        return parse_mapping(row.mapping), name
    return parse_mapping(value), None


def save_mapping(engine: sa.Engine, name: object, mapping: object,
                 created_by: str | None) -> dict[str, Any]:
    """Create or replace the mapping ``name``; what :func:`list_mappings` shows of it."""
    clean_name = check_name(name)
    clean = parse_mapping(mapping)
    if not clean:
        raise InputError("A saved mapping needs at least one field, e.g. "
                         '{"street": "Street Address"}.', code="invalid_mapping",
                         problem=Problem.UNPROCESSABLE)
    now = datetime.now(UTC)
    with writing(engine).begin() as conn:  # reads, then writes: take SQLite's lock first (see writing)
        exists = conn.execute(sa.select(saved_mappings.c.name)
                              .where(saved_mappings.c.name == clean_name)).first()
        if exists:
            conn.execute(saved_mappings.update().where(saved_mappings.c.name == clean_name)
                         .values(mapping=clean, updated_at=now))
        else:
            count = conn.execute(sa.select(sa.func.count()).select_from(saved_mappings)).scalar_one()
            if count >= MAX_SAVED:
                raise InputError(f"At most {MAX_SAVED} mappings can be saved.",
                                 code="too_many_mappings", problem=Problem.UNPROCESSABLE)
            conn.execute(saved_mappings.insert().values(
                name=clean_name, mapping=clean, created_by=created_by, created_at=now,
                updated_at=now))
    return {"name": clean_name, "mapping": clean, "created_by": created_by,
            "updated_at": now.isoformat()}


def list_mappings(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(saved_mappings).order_by(saved_mappings.c.name)).all()
    return [_shown(dict(row._mapping)) for row in rows]


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    updated = row["updated_at"]
    return {"name": row["name"], "mapping": row["mapping"], "created_by": row["created_by"],
            "updated_at": updated.isoformat() if updated else None}


def delete_mapping(engine: sa.Engine, name: str) -> None:
    """Remove the saved mapping ``name`` (:func:`unknown_mapping` if there is
    none). Jobs that used it are unaffected: each stored the mapping it resolved."""
    with engine.begin() as conn:
        if not conn.execute(saved_mappings.delete().where(saved_mappings.c.name == name.strip())).rowcount:
            raise unknown_mapping(conn, name.strip())


def unknown_mapping(conn: sa.Connection, name: str, hint: str = "") -> InputError:
    """The error for a name no mapping has, listing the first 50 that exist."""
    known: list[str] = list(conn.execute(sa.select(saved_mappings.c.name)
                                         .order_by(saved_mappings.c.name).limit(50)).scalars())
    return InputError(f"No saved mapping is called {name[:64]!r}. Saved mappings: "
                      f"{', '.join(known) or 'none yet'}{hint}.",
                      code="unknown_mapping", problem=Problem.UNPROCESSABLE,
                      details={"mapping": name[:64], "saved": known})
