"""What each export profile writes into an export's folder: the data files, then the dataset card."""

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..card_facts import dataset_card_facts
from ..dataset_card import CARD_NAME, card_columns, card_features, render_card
from ..exporting import EXPORT_FORMATS, SPLITS, ExportError, SplitFiles, split_of
from ..models import ExportProfile, ExportSnapshot
from ..release import (
    LEFT_OUT_REASONS,
    RELEASE_FILES,
    RELEASE_LABEL_SOURCE_MAPPING,
    RELEASE_LABEL_SOURCES,
    RELEASE_SPLIT_RATIOS,
    release_file_of,
    release_row,
)
from ..selectors import export_rows

RELEASE_FORMATS = ["json"]


def profile_options(
    profile: str, formats: list[str] | None, split_ratios: dict[str, float] | None
) -> tuple[list[str], dict[str, float] | None]:
    """The formats and ratios a profile uses (release: JSON arrays, the release's proportions)."""
    if profile not in ExportProfile.values:
        raise ExportError(f"unknown export profile {profile!r}: use {', '.join(ExportProfile.values)}")
    if profile != ExportProfile.RELEASE:
        formats = list(formats or EXPORT_FORMATS)
        SplitFiles.check_formats(formats)
        return formats, split_ratios
    if formats and list(formats) != RELEASE_FORMATS:
        raise ExportError(f"the release profile writes JSON arrays only; formats {formats} do not apply")
    return RELEASE_FORMATS, split_ratios or RELEASE_SPLIT_RATIOS


def write_profile_files(
    snapshot: ExportSnapshot, folder: Path, on_row: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Writes the profile's data files and its card into ``folder``; returns the manifest's profile part.
    ``on_row(number)`` is called after each row read (progress, cancel checks; it may raise to stop)."""
    on_row = on_row or (lambda number: None)
    if snapshot.profile == ExportProfile.RELEASE:
        files, extra = _write_release(snapshot, folder, on_row)
    else:
        files, extra = _write_splits(snapshot, folder, on_row), {}
    counts = files.summary()
    card = render_card(
        dataset_card_facts(snapshot.project),
        profile=snapshot.profile,
        formats=snapshot.formats,
        counts=counts,
        left_out={reason: entry["rows"] for reason, entry in extra.get("left_out", {}).items()},
        snapshot=snapshot.pk,
    )
    (folder / CARD_NAME).write_text(card, encoding="utf-8")
    return {
        "profile": snapshot.profile,
        "columns": list(card_columns(snapshot.profile)),
        "features": card_features(snapshot.profile),
        "counts": counts,
        **extra,
    }


def _write_splits(snapshot: ExportSnapshot, folder: Path, on_row: Callable[[int], None]) -> SplitFiles:
    """Default and raw: each sample into its hashed split, once per format."""
    files = SplitFiles(folder, snapshot.formats, [s for s in SPLITS if snapshot.split_ratios[s] > 0])
    try:
        rows = export_rows(snapshot.project, snapshot.filters, labelled_only=snapshot.profile != ExportProfile.RAW)
        for number, row in enumerate(rows, start=1):
            files.write(split_of(row["id"], snapshot.split_ratios, snapshot.split_seed), row)
            on_row(number)
    finally:
        files.close()
    return files


def _write_release(
    snapshot: ExportSnapshot, folder: Path, on_row: Callable[[int], None]
) -> tuple[SplitFiles, dict[str, Any]]:
    """The release's five JSON arrays; rows it would not hold are counted, not written."""
    files = SplitFiles(folder, RELEASE_FORMATS, list(RELEASE_FILES))
    left_out: Counter = Counter()
    ratios, seed = snapshot.split_ratios, snapshot.split_seed
    try:
        rows = export_rows(snapshot.project, snapshot.filters, with_source_split=True)
        for number, (row, source_split) in enumerate(rows, start=1):
            on_row(number)
            kept, reason = release_row(row)
            if kept is None:
                left_out[reason] += 1
                continue
            files.write(release_file_of(row, source_split, ratios, seed), kept)
    finally:
        files.close()
    return files, {
        "label_sources": list(RELEASE_LABEL_SOURCES),
        "label_source_mapping": RELEASE_LABEL_SOURCE_MAPPING,
        "left_out": {reason: {"rows": left_out[reason], "why": why} for reason, why in LEFT_OUT_REASONS.items()},
        "refusals": "refusal_data_augmentation rows go to refusals_train/refusals_validation, never to test",
        "split_kept_from_import": "a split recorded when the file was imported (its name) wins over the hash",
    }
