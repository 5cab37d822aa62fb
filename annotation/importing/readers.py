"""Streams records out of JSONL, JSON-array, CSV and Parquet files, gzipped or not.

Each reader yields ``(Location, dict)``. Input is read under :class:`ReadLimits` checked while
streaming: decompressed bytes (absolute and as a ratio to the file on disk), line length (a line
is refused before it is built whole), records, blank lines and JSON nesting. Records are decoded
strictly as UTF-8 and every string value is checked (size, NUL characters) before an adapter sees it.
"""

import csv
import gzip
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import ImportDataError, Location

Record = dict[str, Any]
FORMATS = ("jsonl", "json", "csv", "parquet")
_BROKEN_GZIP = (OSError, EOFError, zlib.error)

# Records are bounded by ReadLimits.max_line_bytes (checked as lines are fed to the csv module).
csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class ReadLimits:
    """What one import file may hold; each is a setting (README "Import limits")."""

    max_field_bytes: int = 1024 * 1024
    max_bytes: int = 4 * 1024**3
    max_ratio: float = 100.0
    max_line_bytes: int = 16 * 1024 * 1024
    max_document_bytes: int = 256 * 1024 * 1024
    max_rows: int = 10_000_000
    max_blank_lines: int = 100_000
    max_depth: int = 32

    @classmethod
    def from_settings(cls) -> "ReadLimits":
        from django.conf import settings

        return cls(
            max_field_bytes=settings.AEGIS_IMPORT_MAX_FIELD_BYTES,
            max_bytes=settings.AEGIS_IMPORT_MAX_BYTES,
            max_ratio=settings.AEGIS_IMPORT_MAX_RATIO,
            max_line_bytes=settings.AEGIS_IMPORT_MAX_LINE_BYTES,
            max_document_bytes=settings.AEGIS_IMPORT_MAX_DOCUMENT_BYTES,
            max_rows=settings.AEGIS_IMPORT_MAX_ROWS,
            max_blank_lines=settings.AEGIS_IMPORT_MAX_BLANK_LINES,
            max_depth=settings.AEGIS_IMPORT_MAX_JSON_DEPTH,
        )

    def allowed_bytes(self, path: Path) -> tuple[int, str]:
        """The most decompressed bytes the file may yield, and the setting that says so."""
        if not _is_gzip(path):
            return self.max_bytes, "AEGIS_IMPORT_MAX_BYTES"
        by_ratio = int(max(path.stat().st_size, 1) * self.max_ratio)
        if by_ratio < self.max_bytes:
            return by_ratio, f"AEGIS_IMPORT_MAX_RATIO: {self.max_ratio:g} times the {path.stat().st_size:,}-byte upload"
        return self.max_bytes, "AEGIS_IMPORT_MAX_BYTES"


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


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(2) == b"\x1f\x8b"


def _open_binary(path: Path) -> BinaryIO:
    if _is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _decode(raw: bytes, location: Location) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise ImportDataError("the file is UTF-16; save it as UTF-8", location) from None
        raise ImportDataError(
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); save the file as UTF-8",
            location,
        ) from None


class _BoundedLines:
    """Physical lines of a (possibly gzipped) file, each refused before it grows past the limit."""

    def __init__(self, path: Path, name: str, limits: ReadLimits):
        self.path, self.name, self.limits = path, name, limits
        self.allowed, self.allowed_by = limits.allowed_bytes(path)
        self.total = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        limits, blank = self.limits, 0
        with _open_binary(self.path) as stream:
            number = 0
            while True:
                number += 1
                location = Location(self.name, line=number)
                try:
                    raw = stream.readline(limits.max_line_bytes + 2)
                except _BROKEN_GZIP as error:
                    raise ImportDataError(f"the compressed data is damaged or cut short: {error}", location) from None
                if not raw:
                    return
                self.total += len(raw)
                if self.total > self.allowed:
                    raise ImportDataError(
                        f"the file decompresses to more than {self.allowed:,} bytes ({self.allowed_by})", location
                    )
                if len(raw.rstrip(b"\r\n")) > limits.max_line_bytes:
                    raise ImportDataError(
                        f"line longer than {limits.max_line_bytes:,} bytes (setting AEGIS_IMPORT_MAX_LINE_BYTES)",
                        location,
                    )
                text = _decode(raw, location)
                if number == 1:
                    text = text.removeprefix("\ufeff")
                if not text.strip():
                    blank += 1
                    if blank > limits.max_blank_lines:
                        raise ImportDataError(
                            f"more than {limits.max_blank_lines:,} blank lines (setting AEGIS_IMPORT_MAX_BLANK_LINES)",
                            location,
                        )
                yield number, text


def _check_values(value: Any, location: Location, limits: ReadLimits) -> None:
    """Refuses strings (at any depth) over the field-size limit or holding NUL, and over-deep nesting."""
    pending: list[tuple[Any, str | None, int]] = [(value, None, 0)]
    while pending:
        item, field, depth = pending.pop()
        if isinstance(item, str):
            if len(item) * 4 > limits.max_field_bytes and len(item.encode("utf-8")) > limits.max_field_bytes:
                raise ImportDataError(
                    f"value is {len(item.encode('utf-8')):,} bytes; the limit is {limits.max_field_bytes:,} "
                    "(setting AEGIS_IMPORT_MAX_FIELD_BYTES)",
                    location,
                    field,
                )
            if "\x00" in item:
                raise ImportDataError(
                    f"NUL character at position {item.index(chr(0)) + 1}: text may not hold NUL", location, field
                )
        elif isinstance(item, dict | list):
            if depth >= limits.max_depth:
                raise ImportDataError(
                    f"nested deeper than {limits.max_depth} levels (setting AEGIS_IMPORT_MAX_JSON_DEPTH)",
                    location,
                    field,
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    pending.append((key, field or str(key), depth + 1))
                    pending.append((child, field or str(key), depth + 1))
            else:
                pending.extend((child, field, depth + 1) for child in item)


def _loads(text: str, location: Location) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # the standard parser decides (it also takes NaN and lone surrogates) and words the error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = replace(location, line=error.lineno) if location.line is None else location
        raise ImportDataError(f"malformed JSON: {error.msg} at column {error.colno}", where) from None
    except RecursionError:
        raise ImportDataError("JSON nested too deeply to read", location) from None


def _within_limits_at_a_glance(text: str, limits: ReadLimits) -> bool:
    """True when a JSON text cannot hold a value over the limits, so that ``_check_values`` need not
    walk it: no decoded string is longer in UTF-8 than 4 bytes per character of the text, nesting
    needs a bracket per level, and a NUL can only be written ``\\u0000`` (JSON refuses a raw one).
    False only means "check value by value"."""
    return (
        len(text) * 4 <= limits.max_field_bytes
        and text.count("{") + text.count("[") <= limits.max_depth
        and "\\u0000" not in text
    )


def _read_jsonl(path: Path, name: str, limits: ReadLimits) -> Iterator[tuple[Location, Record]]:
    """Records of a JSONL file, their values checked against the limits."""
    for number, text in _BoundedLines(path, name, limits):
        if not text.strip():
            continue
        location = Location(name, line=number)
        record = _loads(text, location)
        if not isinstance(record, dict):
            raise ImportDataError(f"expected a JSON object, found {type(record).__name__}", location)
        if not _within_limits_at_a_glance(text, limits):
            _check_values(record, location, limits)
        yield location, record


def _read_json_array(path: Path, name: str, limits: ReadLimits) -> Iterator[tuple[Location, Record]]:
    allowed, allowed_by = limits.allowed_bytes(path)
    if limits.max_document_bytes < allowed:
        allowed, allowed_by = limits.max_document_bytes, "AEGIS_IMPORT_MAX_DOCUMENT_BYTES"
    with _open_binary(path) as stream:
        try:
            raw = stream.read(allowed + 1)
        except _BROKEN_GZIP as error:
            raise ImportDataError(f"the compressed data is damaged or cut short: {error}", name) from None
    if len(raw) > allowed:
        raise ImportDataError(
            f"a JSON array file may hold at most {allowed:,} bytes ({allowed_by}); use JSONL for more", name
        )
    text = _decode(raw, Location(name)).removeprefix("\ufeff")
    del raw
    if not text.strip():
        return
    items = _loads(text, Location(name))
    if not isinstance(items, list):
        raise ImportDataError("expected a JSON array of objects", name)
    for index, record in enumerate(items, start=1):
        if not isinstance(record, dict):
            raise ImportDataError(f"expected a JSON object, found {type(record).__name__}", Location(name, row=index))
        yield Location(name, row=index), record


class _CsvRecordLines:
    """Feeds lines to the csv module and refuses a quoted record that spans too many bytes."""

    def __init__(self, lines: _BoundedLines, limits: ReadLimits):
        self.lines, self.limits = lines, limits
        self.record_start, self.record_bytes = 1, 0

    def next_record(self, line: int) -> None:
        self.record_start, self.record_bytes = line, 0

    def __iter__(self) -> Iterator[str]:
        for number, text in self.lines:
            self.record_bytes += len(text)
            if self.record_bytes > self.limits.max_line_bytes:
                raise ImportDataError(
                    f"a quoted record runs on for more than {self.limits.max_line_bytes:,} characters "
                    f"(to line {number}; setting AEGIS_IMPORT_MAX_LINE_BYTES)",
                    Location(self.lines.name, line=self.record_start),
                )
            yield text


def _read_csv(path: Path, name: str, limits: ReadLimits) -> Iterator[tuple[Location, Record]]:
    lines = _CsvRecordLines(_BoundedLines(path, name, limits), limits)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise ImportDataError(f"malformed CSV: {error}", Location(name, line=1)) from None
    if len(set(header)) != len(header):
        raise ImportDataError(f"repeated column names in the header: {header}", Location(name, line=1))
    previous_end = reader.line_num
    lines.next_record(previous_end + 1)
    try:
        for values in reader:
            location = Location(name, line=previous_end + 1)
            previous_end = reader.line_num
            lines.next_record(previous_end + 1)
            if not values:
                continue
            if len(values) != len(header):
                raise ImportDataError(f"{len(values)} values for {len(header)} columns ({', '.join(header)})", location)
            yield location, dict(zip(header, values))
    except csv.Error as error:
        raise ImportDataError(f"malformed CSV: {error}", Location(name, line=reader.line_num)) from None


def _read_parquet(path: Path, name: str, limits: ReadLimits) -> Iterator[tuple[Location, Record]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ImportDataError(
            f"not a readable Parquet file ({path.stat().st_size:,} bytes; cut short or damaged?): {error}", name
        ) from None
    metadata = parquet.metadata
    if metadata.num_rows > limits.max_rows:
        raise ImportDataError(
            f"{metadata.num_rows:,} rows; the limit is {limits.max_rows:,} (setting AEGIS_IMPORT_MAX_ROWS)", name
        )
    unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if unpacked > limits.max_bytes:
        raise ImportDataError(
            f"the file unpacks to {unpacked:,} bytes; the limit is {limits.max_bytes:,} "
            "(setting AEGIS_IMPORT_MAX_BYTES)",
            name,
        )
    row = 0
    for group in range(metadata.num_row_groups):
        batches = parquet.iter_batches(batch_size=2048, row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as error:
                raise ImportDataError(
                    f"damaged Parquet data in row group {group + 1}: {error}".strip(), Location(name, row=row + 1)
                ) from None
            if batch is None:
                break
            for record in batch.to_pylist():
                row += 1
                yield Location(name, row=row), record


_READERS = {"jsonl": _read_jsonl, "json": _read_json_array, "csv": _read_csv, "parquet": _read_parquet}
_CHECKED_BY_READER = {"jsonl"}  # the others' values are checked by read_records


def read_records(
    path: str | Path,
    *,
    limits: ReadLimits | None = None,
    max_field_bytes: int | None = None,
    display_name: str | None = None,
) -> Iterator[tuple[Location, Record]]:
    """Yields the file's records in order; raises ImportDataError for an empty, broken or oversized file."""
    path = Path(path)
    limits = limits or ReadLimits.from_settings()
    if max_field_bytes is not None:
        limits = replace(limits, max_field_bytes=max_field_bytes)
    name = display_name or path.name
    fmt = detect_format(display_name or path)
    rows = 0
    for location, record in _READERS[fmt](path, name, limits):
        rows += 1
        if rows > limits.max_rows:
            raise ImportDataError(f"more than {limits.max_rows:,} records (setting AEGIS_IMPORT_MAX_ROWS)", location)
        if fmt not in _CHECKED_BY_READER:
            _check_values(record, location, limits)
        yield location, record
    if not rows:
        raise ImportDataError("the file has no records", name)


def columns_of(path: str | Path, display_name: str | None = None) -> list[str] | None:
    """The header of a CSV or the schema of a Parquet file; None for JSON formats."""
    path = Path(path)
    name = display_name or path.name
    fmt = detect_format(name)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError):
            return None  # read_records reports the damaged file with its location
    if fmt == "csv":
        first = next(iter(_BoundedLines(path, name, ReadLimits.from_settings())), None)
        return [] if first is None else next(csv.reader([first[1]]), [])
    return None
