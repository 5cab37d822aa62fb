"""The Aegis 2.0 release layout: its files, column order, label-source vocabulary and the rows it holds.

Pure rules (no database): the export service feeds them rows from ``selectors.export_rows``.
"""

import re
from typing import Any

from .exporting import SPLITS, split_of
from .labels import LabelSource

# The order of the columns in the release's files and on its card.
RELEASE_COLUMNS = (
    "id",
    "reconstruction_id_if_redacted",
    "prompt",
    "response",
    "prompt_label",
    "response_label",
    "violated_categories",
    "prompt_label_source",
    "response_label_source",
)
RELEASE_LABEL_SOURCES = ("human", "llm_jury", "refusal_data_augmentation")
# Ours onto the release's: a reviewer's decision and labels imported without provenance are human
# labels (imports are human-labelled data sets; a release re-imported keeps its own values).
RELEASE_LABEL_SOURCE_MAPPING = {
    LabelSource.HUMAN.value: "human",
    LabelSource.ADJUDICATED.value: "human",
    LabelSource.IMPORTED.value: "human",
    LabelSource.LLM_JURY.value: "llm_jury",
    LabelSource.REFUSAL_DATA_AUGMENTATION.value: "refusal_data_augmentation",
}
# The release's proportions without its refusals: 25,007 / 1,245 / 1,964.
RELEASE_SPLIT_RATIOS = {"train": 0.886, "validation": 0.044, "test": 0.07}
REFUSAL_SPLITS = ("train", "validation")
# Every file the release ships, in the order the card lists them.
RELEASE_FILES = (*SPLITS, *(f"refusals_{split}" for split in REFUSAL_SPLITS))
# Why a row stays out of the release (the manifest counts each).
LEFT_OUT_REASONS = {
    "no_prompt_label": "no prompt label (the release labels every prompt)",
    "response_without_label": "a response without a response label",
    "reconstruction_id_not_a_number": "a reconstruction id that is not a whole number",
}
SOURCE_SPLIT_KEY = "release_split"
_SPLIT_IN_NAME = re.compile(r"(?:^|[_.-])(train|validation|valid|val|dev|test)(?:[_.-]|$)", re.IGNORECASE)
_SPLIT_SPELLINGS = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
                    "dev": "validation", "test": "test"}  # fmt: skip
_WHOLE_NUMBER = re.compile(r"-?\d+")


def split_in_filename(filename: str) -> str | None:
    """``refusals_train.json`` → ``train``; ``test.jsonl.gz`` → ``test``; no split named → None."""
    match = _SPLIT_IN_NAME.search(filename.rsplit("/", 1)[-1])
    return _SPLIT_SPELLINGS[match.group(1).lower()] if match else None


def is_refusal(row: dict[str, Any]) -> bool:
    """A refusal augmentation (our provenance, before mapping)."""
    return row["response_label_source"] == LabelSource.REFUSAL_DATA_AUGMENTATION.value


def release_file_of(row: dict[str, Any], source_split: str | None, ratios: dict[str, float], seed: str) -> str:
    """The release file a kept row goes to: the split recorded at import if any, else a stable hash
    of the id; refusal augmentations go to ``refusals_train``/``refusals_validation`` in the export's
    train:validation proportion, never to test."""
    if is_refusal(row):
        kept = source_split if source_split in REFUSAL_SPLITS else split_of(row["id"], refusal_ratios(ratios), seed)
        return f"refusals_{kept}"
    return source_split if source_split in SPLITS else split_of(row["id"], ratios, seed)


def refusal_ratios(ratios: dict[str, float]) -> dict[str, float]:
    """Train and validation in the export's proportion, no test."""
    kept = ratios["train"] + ratios["validation"]
    if kept <= 0:
        return {"train": 1.0, "validation": 0.0, "test": 0.0}
    return {"train": ratios["train"] / kept, "validation": ratios["validation"] / kept, "test": 0.0}


def release_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The row in the release's columns and vocabulary, or (None, reason) when the release would not hold it."""
    if row["prompt_label"] is None:
        return None, "no_prompt_label"
    if row["response"] is not None and row["response_label"] is None:
        return None, "response_without_label"
    reconstruction = row["reconstruction_id_if_redacted"]
    if reconstruction is not None:
        if not _WHOLE_NUMBER.fullmatch(reconstruction):
            return None, "reconstruction_id_not_a_number"
        reconstruction = int(reconstruction)
    return {
        "id": row["id"],
        "reconstruction_id_if_redacted": reconstruction,
        "prompt": row["prompt"],
        "response": row["response"],
        "prompt_label": row["prompt_label"],
        "response_label": row["response_label"],
        "violated_categories": row["violated_categories"],
        "prompt_label_source": _release_source(row["prompt_label_source"]),
        "response_label_source": _release_source(row["response_label_source"]),
    }, None


def _release_source(source: str | None) -> str | None:
    return None if source is None else RELEASE_LABEL_SOURCE_MAPPING.get(source, source)
