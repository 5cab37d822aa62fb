"""The one CSV writer of the app: RFC 4180 quoting and spreadsheet-formula neutralisation.

Every CSV the app produces (dataset export, agreement report, evaluation report) is written here so
that all of them behave the same way:

* RFC 4180: ``\\r\\n`` between records, and any cell holding a comma, a quote, ``\\r`` or ``\\n`` is
  quoted (quotes doubled), so a bare carriage return can never split a record.
* Formula neutralisation (OWASP "CSV injection"): a text cell starting with ``=``, ``+``, ``-``, ``@``,
  a tab or a carriage return gets a leading apostrophe, which spreadsheets show as text. A cell
  that already starts with an apostrophe followed by one of those characters (or by another
  apostrophe) gets one more, so :func:`restore` undoes the neutralisation exactly.
"""

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_TRIGGERS = frozenset(("=", "+", "-", "@", "\t", "\r"))
ESCAPE = "'"
_ESCAPED_WHEN_NEXT = frozenset((*FORMULA_TRIGGERS, ESCAPE))


class RFC4180(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    doublequote = True
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL
    strict = True


def neutralise(value: str) -> str:
    """The cell text a spreadsheet shows as text, never evaluates; :func:`restore` reverses it."""
    if value[:1] in FORMULA_TRIGGERS or (value[:1] == ESCAPE and value[1:2] in _ESCAPED_WHEN_NEXT):
        return ESCAPE + value
    return value


def restore(value: str) -> str:
    """The original text of a cell written by :func:`neutralise`."""
    if value[:1] == ESCAPE and value[1:2] in _ESCAPED_WHEN_NEXT:
        return value[1:]
    return value


def cell(value: Any) -> Any:
    """None as an empty cell, text neutralised, anything else as ``csv`` writes it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    return value


class CsvWriter:
    """Writes rows of cells to a text stream opened with ``newline=""`` (or a StringIO / response)."""

    def __init__(self, stream: TextIO):
        self._writer = csv.writer(stream, dialect=RFC4180)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow([cell(value) for value in values])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
