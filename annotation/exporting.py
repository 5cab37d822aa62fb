"""The Aegis 2.0 release format: columns, deterministic splits and the file writers."""

import hashlib
import io
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from core.csvfiles import CsvWriter
from core.errors import ApplicationError

EXPORT_COLUMNS = (
    "id",
    "prompt",
    "response",
    "prompt_label",
    "response_label",
    "prompt_label_source",
    "response_label_source",
    "violated_categories",
    "reconstruction_id_if_redacted",
)
SPLITS = ("train", "validation", "test")
EXPORT_FORMATS = ("jsonl", "parquet", "csv")
DEFAULT_SPLIT_RATIOS = {"train": 0.9, "validation": 0.05, "test": 0.05}
CATEGORY_SEPARATOR = ", "


class ExportError(ApplicationError):
    """Export options the exporter cannot use (splits, ratios, formats, filters, profile)."""


def check_split_ratios(ratios: dict[str, float]) -> dict[str, float]:
    unknown = set(ratios) - set(SPLITS)
    if unknown:
        raise ExportError(f"unknown splits {sorted(unknown)}: use {', '.join(SPLITS)}")
    checked = {split: float(ratios.get(split, 0.0)) for split in SPLITS}
    if any(value < 0 for value in checked.values()) or abs(sum(checked.values()) - 1.0) > 1e-9:
        raise ExportError(f"split ratios must be non-negative and add up to 1, got {checked}")
    return checked


def split_of(uid: str, ratios: dict[str, float], seed: str) -> str:
    """The split of a sample: a stable hash of (seed, id) placed on the cumulative ratios."""
    point = int.from_bytes(hashlib.sha256(f"{seed}\x00{uid}".encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    for split in SPLITS:
        cumulative += ratios[split]
        if point < cumulative:
            return split
    return next(split for split in reversed(SPLITS) if ratios[split] > 0)


class _JsonlWriter:
    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def write(self, row: dict[str, Any]) -> None:
        self.stream.write(orjson.dumps(row) + b"\n")

    def close(self) -> None:
        pass


class _JsonArrayWriter:
    """One JSON array (the release's layout), streamed one object per line so memory stays bounded."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.separator = b"[\n"

    def write(self, row: dict[str, Any]) -> None:
        self.stream.write(self.separator + orjson.dumps(row))
        self.separator = b",\n"

    def close(self) -> None:
        self.stream.write(b"[]\n" if self.separator == b"[\n" else b"\n]\n")


class _CsvWriter:
    """RFC 4180 with formulas neutralised (core.csvfiles); CSV cannot tell null from empty."""

    def __init__(self, stream: BinaryIO):
        self.text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        self.writer = CsvWriter(self.text)
        self.writer.writerow(EXPORT_COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow(row.values())

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


class _ParquetWriter:
    """Buffers rows and writes them as row groups, so memory stays bounded."""

    ROW_GROUP = 10_000

    def __init__(self, stream: BinaryIO):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([(column, pa.string()) for column in EXPORT_COLUMNS])
        self.writer = pq.ParquetWriter(stream, self.schema, compression="zstd")
        self.buffer: dict[str, list[Any]] = {column: [] for column in EXPORT_COLUMNS}
        self.buffered = 0

    def write(self, row: dict[str, Any]) -> None:
        for column, value in row.items():
            self.buffer[column].append(value)
        self.buffered += 1
        if self.buffered >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.buffered:
            self.writer.write_table(self.pa.table(self.buffer, schema=self.schema))
            self.buffer = {column: [] for column in EXPORT_COLUMNS}
            self.buffered = 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


_WRITERS = {"jsonl": _JsonlWriter, "csv": _CsvWriter, "parquet": _ParquetWriter, "json": _JsonArrayWriter}
COUNTED_FIELDS = ("prompt_label", "response_label", "prompt_label_source", "response_label_source")


class SplitFiles:
    """One file per (split, format) in a folder, with row, label and label-source counts per split."""

    def __init__(self, folder: Path, formats: list[str], splits: list[str]):
        self.check_formats(formats, allowed=tuple(_WRITERS))
        self.streams: list[BinaryIO] = []
        self.writers: dict[str, list[Any]] = {}
        for split in splits:
            self.writers[split] = []
            for fmt in formats:
                stream = (folder / f"{split}.{fmt}").open("wb")
                self.streams.append(stream)
                self.writers[split].append(_WRITERS[fmt](stream))
        self.counts: dict[str, Counter] = {split: Counter() for split in splits}

    @staticmethod
    def check_formats(formats: list[str], allowed: tuple[str, ...] = EXPORT_FORMATS) -> None:
        unknown = set(formats) - set(allowed)
        if unknown or not formats:
            raise ExportError(f"formats must be some of {', '.join(allowed)}, got {formats}")

    def write(self, split: str, row: dict[str, Any]) -> None:
        for writer in self.writers[split]:
            writer.write(row)
        counts = self.counts[split]
        counts["rows"] += 1
        for field in COUNTED_FIELDS:
            counts[f"{field}:{row[field]}"] += 1

    def close(self) -> None:
        for writers in self.writers.values():
            for writer in writers:
                writer.close()
        for stream in self.streams:
            stream.close()

    def summary(self) -> dict[str, Any]:
        summary = {}
        for split, counts in self.counts.items():
            labels: dict[str, dict[str, int]] = {field: {} for field in COUNTED_FIELDS}
            for key, count in sorted(counts.items()):
                if ":" in key:
                    field, value = key.split(":", 1)
                    labels[field][value] = count
            summary[split] = {"rows": counts["rows"], **labels}
        return summary


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}
