"""Atomic file writing: write beside the target under a temporary name, then rename into place, so a
reader sees the old file or the whole new one and a killed writer leaves only a temporary name."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMPORARY_MARK = ".tmp-"


def temporary_prefix(final: Path) -> str:
    return f".{final.name}{TEMPORARY_MARK}"


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yields a temporary folder beside ``final``; renamed to ``final`` when the block succeeds,
    removed when it fails."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(final), dir=final.parent))
    try:
        yield temporary
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


@contextmanager
def atomic_file(final: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Yields a stream on a temporary file beside ``final``; replaces ``final`` when the block
    succeeds, removed when it fails."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(final), dir=final.parent)
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def temporaries_of(final: Path) -> list[Path]:
    """The temporary files or folders that writers of ``final`` left behind."""
    if not final.parent.is_dir():
        return []
    return sorted(final.parent.glob(f"{temporary_prefix(final)}*"))


def temporaries_under(folder: Path) -> list[Path]:
    """Every temporary file or folder left anywhere under ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.rglob(f".*{TEMPORARY_MARK}*"))


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
