"""Last row wins, found in bounded memory (issue 18): the partitioned search
for superseded rows gives exactly the in-memory answer."""

from __future__ import annotations

import random

import pytest

from cocoa.jobtypes.import_voters import repeats


def in_memory(pairs: list[tuple[str, int]]) -> dict[int, int]:
    """The reference: one dict of every id's last row."""
    last: dict[str, int] = {}
    superseded: dict[int, int] = {}
    for key, row in pairs:
        if key in last:
            superseded[last[key]] = row
        last[key] = row
    return superseded


@pytest.mark.parametrize(("rows", "ids", "bound"), [
    (2_000, 1_500, 100),  # spills early, a few repeats
    (40_000, 30_000, 2_000),  # many partitions' worth
    (5_000, 7, 3),  # every id repeated many times, over and over
    (1_000, 100, 10_000),  # never spills
])
def test_partitioned_equals_in_memory(monkeypatch: pytest.MonkeyPatch, rows: int, ids: int,
                                      bound: int) -> None:
    monkeypatch.setattr(repeats, "IN_MEMORY_IDS", bound)
    rng = random.Random(rows)
    pairs = [(f"NC{rng.randrange(ids):08d}", number) for number in range(2, rows + 2)]
    expected = in_memory(pairs)
    assert expected  # the case has repeats to find
    assert repeats.superseded_rows(iter(pairs)) == expected


def test_spills_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound the ids go to temporary files, not a growing dict."""
    monkeypatch.setattr(repeats, "IN_MEMORY_IDS", 50)
    spilled: list[int] = []
    real = repeats._partitioned

    def counting(first: list[tuple[str, int]], rest: object) -> dict[int, int]:
        spilled.append(len(first))
        return real(first, rest)  # type: ignore[arg-type]

    monkeypatch.setattr(repeats, "_partitioned", counting)
    pairs = [(f"id{n % 400}", n) for n in range(1_000)]
    assert repeats.superseded_rows(pairs) == in_memory(pairs)
    assert spilled == [51]
