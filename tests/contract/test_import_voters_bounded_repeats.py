"""Last row wins when the repeated-id search spills to disk (issue 18).

Past ``repeats.IN_MEMORY_IDS`` distinct ids the search partitions the ids
into temporary files; with the bound set tiny, a small generated file takes
that path, and the import must still match the generator's truth exactly
(voters, names, item errors and warnings, households) and a re-import must
change nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.contract.test_import_voters import (
    LAYOUTS,
    import_file,
    pairwise,
    truth_key,
    voter_rows,
)

from cocoa.jobtypes.import_voters import repeats
from cocoa.samples.voters import generate


@pytest.mark.parametrize("layout", LAYOUTS)
def test_spilled_search_matches_ground_truth(db_engine: sa.Engine, layout: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repeats, "IN_MEMORY_IDS", 5)
    gen = generate(layout, 500, seed=21)
    assert gen.mess.get("duplicate_id") or gen.warnings  # the file repeats voters
    run = import_file(db_engine, gen.data, batch_size=97)

    assert {e.item_index: e.code for e in run.errors if e.severity == "error"} == gen.errors
    assert {e.item_index: e.code for e in run.errors if e.severity == "warning"} == gen.warnings
    rows = voter_rows(db_engine)
    assert {truth_key(r, gen) for r in rows} == set(gen.households)
    for r in rows:
        assert (r["first_name"], r["last_name"]) == gen.names[truth_key(r, gen)]
    found = {truth_key(r, gen): r["household_id"] for r in rows}
    assert pairwise(gen.households, found) == (1.0, 1.0)

    again = import_file(db_engine, gen.data, batch_size=97)
    assert again.result.get("voters_updated", 0) == 0
    assert again.result.get("voters_created", 0) == 0
