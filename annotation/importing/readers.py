"""Streams records out of JSONL, JSON-array, CSV and Parquet files, gzipped or not.

Each reader yields ``(Location, dict)``; records are decoded strictly as UTF-8 and every
string value is checked against the field-size limit before an adapter sees it.
"""

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ImportDataError, Location

Record = dict[str, Any]
FORMATS = ("jsonl", "json", "csv", "parquet")

csv.field_size_limit(sys.maxsize)


def detect_format(path: str | Path) -> str:
    """The format from the file name: ``.jsonl``, ``.json``, ``.csv``, ``.parquet`` (+ ``.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise ImportDataError("unknown file type: expected .jsonl, .json, .csv or .parquet (optionally .gz)", str(path))


def _open_binary(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _decode(raw: bytes, location: Location) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportDataError(
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); save the file as UTF-8",
            location,
        ) from None


def _decoded_lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=1):
        text = _decode(raw, Location(name, line=number))
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text


def _check_sizes(value: Any, location: Location, max_bytes: int, field: str | None = None) -> None:
    """Rejects any string (at any depth) longer than ``max_bytes`` in UTF-8."""
    if isinstance(value, str):
        if len(value) * 4 > max_bytes and len(value.encode("utf-8")) > max_bytes:
            raise ImportDataError(
                f"value is {len(value.encode('utf-8')):,} bytes; the limit is {max_bytes:,} "
                "(setting AEGIS_IMPORT_MAX_FIELD_BYTES)",
                location,
                field,
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_sizes(item, location, max_bytes, field or str(key))
    elif isinstance(value, list):
        for item in value:
            _check_sizes(item, location, max_bytes, field)


def _read_jsonl(path: Path, name: str) -> Iterator[tuple[Location, Record]]:
    with _open_binary(path) as stream:
        for number, text in _decoded_lines(stream, name):
            if not text.strip():
                continue
            location = Location(name, line=number)
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise ImportDataError(f"malformed JSON: {error.msg} at column {error.colno}", location) from None
            if not isinstance(record, dict):
                raise ImportDataError(f"expected a JSON object, found {type(record).__name__}", location)
            yield location, record


def _read_json_array(path: Path, name: str) -> Iterator[tuple[Location, Record]]:
    with _open_binary(path) as stream:
        raw = stream.read()
    text = _decode(raw, Location(name)).removeprefix("\ufeff")
    if not text.strip():
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportDataError(
            f"malformed JSON: {error.msg} at column {error.colno}", Location(name, line=error.lineno)
        ) from None
    if not isinstance(items, list):
        raise ImportDataError("expected a JSON array of objects", name)
    for index, record in enumerate(items, start=1):
        if not isinstance(record, dict):
            raise ImportDataError(f"expected a JSON object, found {type(record).__name__}", Location(name, row=index))
        yield Location(name, row=index), record


def _read_csv(path: Path, name: str) -> Iterator[tuple[Location, Record]]:
    with _open_binary(path) as stream:
        lines = _decoded_lines(stream, name)
        reader = csv.reader(text for _, text in lines)
        try:
            header = next(reader)
        except StopIteration:
            return
        if len(set(header)) != len(header):
            raise ImportDataError(f"repeated column names in the header: {header}", Location(name, line=1))
        previous_end = reader.line_num
        try:
            for values in reader:
                location = Location(name, line=previous_end + 1)
                previous_end = reader.line_num
                if not values:
                    continue
                if len(values) != len(header):
                    raise ImportDataError(
                        f"{len(values)} values for {len(header)} columns ({', '.join(header)})", location
                    )
                yield location, dict(zip(header, values))
        except csv.Error as error:
            raise ImportDataError(f"malformed CSV: {error}", Location(name, line=reader.line_num)) from None


def _read_parquet(path: Path, name: str) -> Iterator[tuple[Location, Record]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise ImportDataError(f"not a readable Parquet file: {error}", name) from None
    row = 0
    for batch in parquet.iter_batches(batch_size=2048):
        for record in batch.to_pylist():
            row += 1
            yield Location(name, row=row), record


_READERS = {"jsonl": _read_jsonl, "json": _read_json_array, "csv": _read_csv, "parquet": _read_parquet}


def read_records(
    path: str | Path, *, max_field_bytes: int, display_name: str | None = None
) -> Iterator[tuple[Location, Record]]:
    """Yields the file's records in order; raises ImportDataError for an empty or broken file."""
    path = Path(path)
    name = display_name or path.name
    fmt = detect_format(display_name or path)
    empty = True
    for location, record in _READERS[fmt](path, name):
        empty = False
        _check_sizes(record, location, max_field_bytes)
        yield location, record
    if empty:
        raise ImportDataError("the file has no records", name)


def columns_of(path: str | Path, display_name: str | None = None) -> list[str] | None:
    """The header of a CSV or the schema of a Parquet file; None for JSON formats."""
    path = Path(path)
    fmt = detect_format(display_name or path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if fmt == "csv":
        with _open_binary(path) as stream:
            first = stream.readline()
        text = _decode(first, Location(display_name or path.name, line=1)).removeprefix("\ufeff")
        return next(csv.reader(io.StringIO(text)), [])
    return None
