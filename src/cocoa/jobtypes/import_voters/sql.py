"""The statements a voter batch's write runs, per backend, written once.

Id and key lists travel as one JSON parameter: SQLite reads it with
``json_each``, PostgreSQL with ``json_array_elements_text`` /
``json_each_text`` (adapting a Python list to a PostgreSQL array is a
client-side cost per element).
"""

from __future__ import annotations

from dataclasses import dataclass

from cocoa.db.bulk import POSTGRES, SQLITE, Bulk
from cocoa.jobtypes.import_voters.parsing import VOTER_COLUMNS

WRITE_COLUMNS = (*VOTER_COLUMNS, "source", "external_id", "record", "record_hash",
                 "import_job_id", "household_id", "created_at", "updated_at")
# A voter already stored takes every written column but its key and created_at.
VOTER_ON_CONFLICT = "ON CONFLICT (source, external_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in WRITE_COLUMNS
    if c not in ("source", "external_id", "created_at"))
# A household created after the parcels it is on is linked as it is inserted
# (cocoa.domain.parcel_links: by address, else by its building).
LINK_COLUMNS = ("parcel_id", "parcel_link_method")
HOUSEHOLD_COLUMNS = ("address_key", "street_line", "unit", "city", "state", "zip_code",
                     "county", "precinct", *LINK_COLUMNS, "voter_count", "created_at",
                     "updated_at")
RESERVE_HOUSEHOLD_IDS = ("SELECT nextval(pg_get_serial_sequence('households', 'id')) "
                         "FROM generate_series(1, %s)")  # PostgreSQL only: ids before COPY


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements of one backend (no per-batch compiling)."""

    existing: str
    household_ids: str
    insert_households: str
    insert_voters: str
    upsert_voters: str
    shift_counts: str


def _inserts(bulk: Bulk) -> dict[str, str]:
    """The statements both backends write alike (but for parameter markers)."""
    insert_voters = (f"INSERT INTO voters ({', '.join(WRITE_COLUMNS)}) VALUES "
                     f"({bulk.marks(WRITE_COLUMNS)})")
    return {"insert_households": (f"INSERT INTO households ({', '.join(HOUSEHOLD_COLUMNS)}) VALUES "
                                  f"({bulk.marks(HOUSEHOLD_COLUMNS)}) "
                                  "ON CONFLICT (address_key) DO NOTHING"),
            "insert_voters": insert_voters, "upsert_voters": f"{insert_voters} {VOTER_ON_CONFLICT}"}


def _postgres_statements(bulk: Bulk) -> Statements:
    # One index probe per id or key, whatever the statistics say: while a
    # first import fills the tables they are stale, and ``column =
    # ANY(...)`` was then planned as a scan of every row of the source
    # with a linear search of the list for each (quadratic).
    return Statements(
        existing=("SELECT v.external_id, v.record_hash, v.household_id "
                  "FROM json_array_elements_text(%(ids)s::json) AS k(id), LATERAL "
                  "(SELECT external_id, record_hash, household_id FROM voters "
                  "WHERE source = %(source)s AND external_id = k.id LIMIT 1) AS v"),
        household_ids=("SELECT h.address_key, h.id "
                       "FROM json_array_elements_text(%(keys)s::json) AS k(key), LATERAL "
                       "(SELECT address_key, id FROM households "
                       "WHERE address_key = k.key LIMIT 1) AS h"),
        shift_counts=("UPDATE households SET voter_count = voter_count + d.delta::int, "
                      "updated_at = %(now)s "
                      "FROM json_each_text(%(deltas)s::json) AS d(id, delta) "
                      "WHERE households.id = d.id::int"),
        **_inserts(bulk),
    )


def _sqlite_statements(bulk: Bulk) -> Statements:
    return Statements(
        existing=("SELECT external_id, record_hash, household_id FROM voters "
                  "WHERE source = :source AND external_id IN (SELECT value FROM json_each(:ids))"),
        household_ids=("SELECT address_key, id FROM households "
                       "WHERE address_key IN (SELECT value FROM json_each(:keys))"),
        shift_counts=("UPDATE households SET voter_count = voter_count + d.value, "
                      "updated_at = :now FROM json_each(:deltas) AS d "
                      "WHERE households.id = CAST(d.key AS INTEGER)"),
        **_inserts(bulk),
    )


_BY_BACKEND = {SQLITE.name: _sqlite_statements(SQLITE), POSTGRES.name: _postgres_statements(POSTGRES)}


def statements(bulk: Bulk) -> Statements:
    return _BY_BACKEND[bulk.name]
