"""docs/overview.md shows the whole public job object (issue 21).

A client author reads the example there first; a field the API sends but
the example leaves out (as ``archived_at`` and ``severity`` once were) is a
field nobody knows about. Every ``JobOut`` field, and every field of a
recent error, must appear in it.
"""

from __future__ import annotations

import re
from pathlib import Path

from cocoa.api.schemas import ItemErrorOut, JobOut

OVERVIEW = Path(__file__).resolve().parents[2] / "docs" / "overview.md"


def _job_object_example() -> str:
    text = OVERVIEW.read_text()
    start = text.index("The job object")
    match = re.search(r"```json\n(.*?)```", text[start:], re.S)
    assert match, "docs/overview.md: the job object example (```json) is missing"
    return match.group(1)


def test_the_overview_example_lists_every_field_of_the_job_object() -> None:
    example = _job_object_example()
    shown = set(re.findall(r'"(\w+)":', example))
    missing = [name for name in [*JobOut.model_fields, *ItemErrorOut.model_fields] if name not in shown]
    assert missing == [], f"add these to the job object in docs/overview.md: {missing}"


def test_the_overview_explains_the_fields_people_misread() -> None:
    text = OVERVIEW.read_text()
    for name in ("elapsed_seconds", "processing_seconds", "duration_seconds", "error_count", "item_index",
                 "archived_at"):
        assert f"**`{name}`**" in text, name
    assert "deprecated" in text.split("**`duration_seconds`**", 1)[1][:200]
