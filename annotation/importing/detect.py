"""Choosing an adapter from a file's columns, for uploads where the admin asks us to detect it."""

from pathlib import Path

from django.conf import settings

from taxonomy.datasets import DATA_SETS

from .adapters import ADAPTERS
from .errors import ImportDataError
from .readers import columns_of, read_records

# Columns that only files of that adapter have together (the public data sets' signatures, in
# ``taxonomy.datasets``); the most specific match wins, and ``generic`` (a prompt or turns) is the fallback.
SIGNATURES: dict[str, tuple[str, ...]] = {
    **{name: data_set.signature for name, data_set in DATA_SETS.items() if name in ADAPTERS},
    "generic": ("prompt",),
}
GENERIC_TURNS = ("turns",)


def file_columns(path: Path, display_name: str) -> list[str]:
    """The header (CSV, Parquet) or the keys of the first record (JSON formats)."""
    columns = columns_of(path, display_name)
    if columns is not None:
        return columns
    for _, record in read_records(
        path, max_field_bytes=settings.AEGIS_IMPORT_MAX_FIELD_BYTES, display_name=display_name
    ):
        return list(record)
    return []


def detect_adapter(path: str | Path, display_name: str | None = None) -> str:
    """The adapter whose signature columns the file has (the most specific one); raises
    ImportDataError naming the file and its columns when none fits."""
    path = Path(path)
    name = display_name or path.name
    columns = set(file_columns(path, name))
    fitting = [adapter for adapter, needed in SIGNATURES.items() if set(needed) <= columns]
    if not fitting and set(GENERIC_TURNS) <= columns:
        fitting = ["generic"]
    if not fitting:
        raise ImportDataError(
            f"cannot tell the format from the columns ({', '.join(sorted(columns)) or 'none'}); "
            f"choose an adapter ({', '.join(ADAPTERS)})",
            name,
        )
    return max(fitting, key=lambda adapter: len(SIGNATURES[adapter]))
