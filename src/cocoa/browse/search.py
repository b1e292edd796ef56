"""Find households by what a person types: an address (misspelt), a name, a voter id.

Why this approach: it must work the same on SQLite and PostgreSQL, so
neither ``pg_trgm`` nor SQLite's FTS5 is available to both. Instead:

* the query is normalised with :func:`cocoa.domain.addresses.normalize_address`,
  the same normaliser that built ``households.street_line``, so "North Oak
  Street" already reads ``N OAK ST``;
* candidates come from SQL with cheap, portable conditions: the house number
  when there is one (people get the number right and the street name wrong),
  ``LIKE '120 %'``, bounded by :data:`MAX_CANDIDATES`; without a number, the
  distinct street names (thousands in a county, kept in memory per version
  of the households table) are the candidates;
* candidates are ranked in Python by similarity (``difflib``) of the
  normalised lines, and weak matches dropped. So ``120 Mian Stret`` finds
  ``120 MAIN ST`` and ``Oka Stret`` finds the ``OAK ST`` houses.

Names match voters whose first or last name starts with every word typed
(``smi jo`` finds John Smith); a voter id matches exactly.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import sqlalchemy as sa

from cocoa.browse.versions import households_version
from cocoa.db.tables import households, voters
from cocoa.domain.addresses import normalize_address

MAX_CANDIDATES = 5000
MIN_SIMILARITY = 0.6
_WORD = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class Hit:
    household_id: int
    score: float  # 2: voter id, 1.5: name, else the address similarity (0..1)


def search(conn: sa.Connection, text: str) -> list[Hit]:
    """Households matching ``text``, best first (each once)."""
    text = text.strip()[:200]
    if not text:
        return []
    best: dict[int, float] = {}
    for hit in [*_by_voter_id(conn, text), *_by_name(conn, text), *_by_address(conn, text)]:
        if hit.score > best.get(hit.household_id, -1.0):
            best[hit.household_id] = hit.score
    return [Hit(hid, score) for hid, score in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))]


def _by_voter_id(conn: sa.Connection, text: str) -> list[Hit]:
    if " " in text or len(text) > 128:
        return []
    query = (sa.select(voters.c.household_id).where(voters.c.external_id.in_({text, text.upper()}),
                                                    voters.c.household_id.isnot(None)))
    return [Hit(int(row[0]), 2.0) for row in conn.execute(query)]


def _by_name(conn: sa.Connection, text: str) -> list[Hit]:
    words = [w for w in _WORD.findall(text.upper()) if not w[0].isdigit()]
    if not words or len(words) > 4 or any(ch.isdigit() for ch in text):
        return []
    first, last = sa.func.upper(voters.c.first_name), sa.func.upper(voters.c.last_name)
    conds = [sa.or_(first.like(f"{w}%"), last.like(f"{w}%")) for w in words]
    query = (sa.select(voters.c.household_id).where(*conds, voters.c.household_id.isnot(None))
             .distinct().limit(MAX_CANDIDATES))
    return [Hit(int(row[0]), 1.5) for row in conn.execute(query)]


def _by_address(conn: sa.Connection, text: str) -> list[Hit]:
    wanted = normalize_address(text).street_line or text.upper()
    words = _WORD.findall(wanted)
    if not words:
        return []
    if not words[0][0].isdigit():
        return _by_street(conn, wanted)
    number = words[0]
    rest = wanted[len(number):].strip()
    query = (sa.select(households.c.id, households.c.street_line)
             .where(households.c.street_line.like(f"{number} %")).limit(MAX_CANDIDATES))
    hits = []
    for row in conn.execute(query):
        hid, line = int(row.id), str(row.street_line)
        score = _similarity(rest, line.split(" ", 1)[1] if " " in line else line) if rest else 1.0
        if score >= MIN_SIMILARITY:
            hits.append(Hit(hid, score))
    return hits


def _by_street(conn: sa.Connection, wanted: str) -> list[Hit]:
    """No house number: rank the distinct streets (a county has thousands,
    not a hundred thousand), then take their households. A substring or
    trigram test cannot do this: ``OKA`` shares no three letters with ``OAK``."""
    hits: list[Hit] = []
    for street, ids in _streets(conn).items():
        matcher = difflib.SequenceMatcher(None, wanted, street, autojunk=False)
        if matcher.real_quick_ratio() < MIN_SIMILARITY or matcher.quick_ratio() < MIN_SIMILARITY:
            continue
        score = _similarity(wanted, street)
        if score >= MIN_SIMILARITY:
            hits.extend(Hit(hid, score) for hid in ids)
            if len(hits) >= MAX_CANDIDATES:
                break
    return hits


_street_memo: dict[tuple[object, ...], dict[str, list[int]]] = {}


def _streets(conn: sa.Connection) -> dict[str, list[int]]:
    """Household ids by street line without its house number, rebuilt only
    when the households table changes (:func:`households_version`)."""
    version = households_version(conn)
    found = _street_memo.get(version)
    if found is None:
        found = {}
        query = sa.select(households.c.id, households.c.street_line, households.c.unit).order_by(households.c.id)
        for row in conn.execute(query):
            line = str(row.street_line)
            if row.unit and line.endswith(row.unit) and " " in line[:-len(row.unit)].rstrip():
                line = line[:-len(row.unit)].rstrip().rsplit(" ", 1)[0]  # the building: unit and designator off
            street = line.split(" ", 1)[1] if line[:1].isdigit() and " " in line else line
            found.setdefault(street, []).append(int(row.id))
        _street_memo.clear()
        _street_memo[version] = found
    return found


def _similarity(wanted: str, candidate: str) -> float:
    """Similarity of two normalised lines; a line that merely has more after
    the wanted text (a unit) still matches well."""
    whole = difflib.SequenceMatcher(None, wanted, candidate, autojunk=False).ratio()
    head = difflib.SequenceMatcher(None, wanted, candidate[:len(wanted) + 2], autojunk=False).ratio()
    return max(whole, head * 0.95)
