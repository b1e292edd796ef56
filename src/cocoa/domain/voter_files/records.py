"""What a parsed row is: the canonical fields, the record, its JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from cocoa.domain.voter_files.issues import RowIssue
from cocoa.domain.voter_files.keys import Residence

# Bumped when parsing or keying changes in a way that should make an otherwise
# identical re-import rewrite its rows (it is part of every record hash).
PARSER_VERSION = "1"


@dataclass(slots=True)
class VoterRecord:
    """One parsed data row.

    ``fields`` holds the canonical voter columns (text trimmed and inner runs
    of spaces collapsed; dates parsed; empty means None); ``values`` is every
    source field exactly as given, in header order (``names``), and
    :attr:`record` the same keyed by the header name. The dict is built on
    demand only: an import hashes and serialises the list directly, and a
    dict of every column per row is a noticeable share of an import.
    """

    row: int
    external_id: str
    fields: dict[str, object]
    values: list[str]
    names: tuple[str, ...] = field(repr=False)
    household: Residence | None  # None when the row has no street address
    warnings: list[RowIssue] = field(default_factory=list)

    @property
    def record(self) -> dict[str, str]:
        """Every source column exactly as given, keyed by the header name."""
        return dict(zip(self.names, self.values, strict=False))


# The canonical voter fields, in the order ``RowReader.parse_row`` returns
# them (the voters table's order). Every layout's ``fields`` are among them;
# the last five come from the residence and mailing columns.
CANONICAL_FIELDS = (
    "first_name", "middle_name", "last_name", "name_suffix", "birth_date", "birth_year",
    "registration_date", "party", "status", "precinct", "county", "phone", "email",
    "res_street", "res_city", "res_state", "res_zip", "mail_address",
)


# Characters ``json.dumps(..., ensure_ascii=False)`` escapes in a string.
_JSON_SPECIAL = re.compile(r'[\x00-\x1f"\\]').search


class RecordJson:
    """Serialise a row's source fields as the JSON object ``{header: value}``.

    Byte for byte what ``json.dumps(record, ensure_ascii=False,
    separators=(",", ":"))`` gives, but when no value needs escaping (nearly
    every row) it is one ``str.join`` of the values interleaved with the
    header's ``{"name":"`` / ``","name":"`` pieces (built once), which is
    much cheaper than the generic encoder.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        keys = [json.dumps(n, ensure_ascii=False) for n in names]
        self._pieces = [f'{"{" if i == 0 else chr(34) + ","}{k}:"' for i, k in enumerate(keys)]
        self._width = len(names)

    def __call__(self, values: list[str]) -> str:
        if len(values) == self._width and self._width and not _JSON_SPECIAL("".join(values)):
            parts: list[str] = [""] * (2 * self._width)
            parts[0::2] = self._pieces
            parts[1::2] = values
            parts.append('"}')
            return "".join(parts)
        return json.dumps(dict(zip(self.names, values, strict=False)), ensure_ascii=False,
                          separators=(",", ":"))
