"""Splitting one decoded line into fields, per the layout's quoting."""

from __future__ import annotations

import csv

from cocoa.domain.voter_files.layouts import Layout


def split_line(text: str, layout: Layout) -> tuple[list[str], bool]:
    """Split one decoded line into fields; the flag says a stray quote was kept.

    ``enclosed``: split on the delimiter (it never occurs inside a field in
    these layouts); a field wrapped in quotes loses the wrapper and ``""``
    becomes ``"``; any other quote is data (``O"NEIL`` stays ``O"NEIL``).

    ``csv``: RFC 4180 within the line. If the line's quoting is broken (a
    field opens a quote that never closes, or text follows a closing quote)
    the quotes are taken literally and the line is split on the delimiter;
    the caller decides whether that gives a usable row.
    """
    delimiter = layout.delimiter
    if layout.quoting == "enclosed":
        if '"' not in text:
            return text.split(delimiter), False
        if len(text) > 1 and text[0] == '"' and text[-1] == '"':
            # Fast path for "a"<tab>"b"<tab>"c": one split instead of one per field.
            parts = text[1:-1].split(f'"{delimiter}"')
            if text.count('"') == 2 * len(parts):  # no quote inside any field
                return parts, False
        return [_unwrap(p) for p in text.split(delimiter)], False
    if '"' not in text:
        return text.split(delimiter), False
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True)), False
    except csv.Error:
        return text.split(delimiter), True


def _unwrap(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value
