"""A vendor export of a voter list, as campaigns get them (issue 17).

Not one of the official layouts: ``Voter ID, First Name, Last Name, Street
Address, Apt, City, State, Zip Code`` - the header of the export that was once
imported with every voter id ignored and 229 namesakes merged. Its traits
are the ones that matter for that:

* few distinct names, so many different voters share one (a file keyed by
  name alone would merge them);
* apartment buildings whose flats are told apart only by the separate
  ``Apt`` column (a household key without it would merge the flats);
* the voter id in a column spelled ``Voter ID``.

The truth (rows, households, buildings, shared names) comes with the bytes,
and the same seed always gives the same file.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

HEADER = ("Voter ID", "First Name", "Last Name", "Street Address", "Apt", "City", "State",
          "Zip Code")
FIRST = ("JAMES", "MARY", "JOHN", "PATRICIA", "ROBERT", "LINDA", "MICHAEL", "MARIA", "DAVID",
         "SUSAN", "JOSÉ", "KEISHA")
LAST = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "LEE",
        "MUÑOZ")
STREETS = ("RIVER ST", "MEADOW ST", "MILL RD", "CHURCH ST", "OLD OXFORD HWY", "BAHAMA RD")
UNIT_STYLES = ("{n}", "APT {n}", "#{n}", "UNIT {n}")


@dataclass(frozen=True, slots=True)
class VendorFile:
    """The file and what importing it must give."""

    data: bytes
    rows: int
    households: int  # distinct (street, apt): flats are households of their own
    buildings: int  # distinct street addresses
    shared_name_rows: int  # rows whose first + last name another row also has


def generate_vendor(n_rows: int = 60, seed: int = 0, *, city: str = "BAHAMA",
                    state: str = "NC", zip_code: str = "27501", first_id: int = 4_100_000,
                    ) -> VendorFile:
    """``n_rows`` voters at about ``n_rows / 3`` buildings, a third of them
    apartment buildings of 2-6 flats; names from small pools."""
    rng = random.Random(seed)
    homes = _homes(rng, max(2, n_rows // 3))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel writes
    writer.writerow(HEADER)
    names: dict[tuple[str, str], int] = {}
    used: set[tuple[str, str]] = set()
    for i in range(n_rows):
        street, apt = homes[i % len(homes)] if i < len(homes) else rng.choice(homes)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        names[(first, last)] = names.get((first, last), 0) + 1
        used.add((street, apt))
        writer.writerow([str(first_id + i), first.title(), last.title(), street.title(), apt,
                         city.title(), state, zip_code])
    shared = sum(count for count in names.values() if count > 1)
    return VendorFile(out.getvalue().encode("utf-8"), n_rows, len(used),
                      len({street for street, _ in used}), shared)


def _homes(rng: random.Random, buildings: int) -> list[tuple[str, str]]:
    """(street address, apt) of every door: a house has no apt, a flat has
    the building's address and its own apt."""
    doors: list[tuple[str, str]] = []
    numbers = rng.sample(range(100, 100 + 20 * buildings, 2), buildings)
    for k, number in enumerate(numbers):
        street = f"{number} {STREETS[k % len(STREETS)]}"
        if k % 3 == 0:
            style = rng.choice(UNIT_STYLES)
            doors += [(street, style.format(n=flat)) for flat in range(1, rng.randint(2, 6) + 1)]
        else:
            doors.append((street, ""))
    return doors
