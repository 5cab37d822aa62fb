"""The guard training blend: each exported sample rendered in the NemoGuard prompt format with the
project's taxonomy and its target JSON, Llama Guard-style augmentation (the category list shuffled,
non-violated categories dropped), the Needs-Caution policy, the paper's ablations and an optional
topic-following blend. Deterministic for a seed."""

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from annotation.labels import LabelSource, apply_needs_caution_policy
from core.errors import ApplicationError
from guards.formats.nemoguard import render_nemoguard_prompt
from taxonomy.datasets import RowError, split_categories
from taxonomy.models import CategoryKind, Taxonomy
from taxonomy.selectors import CategoryIndex

BLEND_SPLITS = ("train", "validation")


class BlendError(ApplicationError):
    """Options or input that cannot make a blend; the message names the file, line and field."""


@dataclass(frozen=True)
class BlendOptions:
    seed: int = 42
    shuffle_probability: float = 0.5
    drop_probability: float = 0.5
    topic_following: str | None = None
    no_fine_grained: bool = False
    no_refusals: bool = False
    jury_labels_only: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BlendOptions":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise BlendError(f"unknown blend options: {', '.join(unknown)} (known: {', '.join(known)})")
        options = cls(**data)
        for name in ("shuffle_probability", "drop_probability"):
            value = getattr(options, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise BlendError(f"{name} must be a number from 0 to 1, got {value!r}")
        if options.topic_following and not Path(options.topic_following).is_file():
            raise BlendError(f"topic_following: no file at {options.topic_following}")
        return options

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_json(prompt_label: str, response_label: str | None, category_names: list[str]) -> str:
    """The answer a guard is trained to give (NemoGuard JSON); parsed back by parse_nemoguard_output."""
    answer = {"User Safety": prompt_label}
    if response_label is not None:
        answer["Response Safety"] = response_label
    if category_names:
        answer["Safety Categories"] = ", ".join(category_names)
    return json.dumps(answer, ensure_ascii=False)


def read_export_split(folder: Path, split: str) -> Iterator[dict[str, Any]]:
    """Rows of one split of an export snapshot (JSONL preferred, else Parquet, else the release
    profile's JSON array followed by its refusals file)."""
    jsonl, parquet, array = folder / f"{split}.jsonl", folder / f"{split}.parquet", folder / f"{split}.json"
    if jsonl.exists():
        with jsonl.open(encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise BlendError(f"{jsonl}, line {number}: not JSON ({error.msg})") from None
    elif parquet.exists():
        import pyarrow.parquet as pq  # only here: pyarrow costs every web and worker process ~40 MB at start-up

        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    elif array.exists():
        for path in (array, folder / f"refusals_{split}.json"):
            if path.exists():
                try:
                    yield from json.loads(path.read_bytes())
                except json.JSONDecodeError as error:
                    raise BlendError(f"{path}: not a JSON array ({error.msg}, line {error.lineno})") from None
    elif (folder / f"{split}.csv").exists():
        raise BlendError(f"{folder}: the export has only CSV files; export with JSONL or Parquet to build a blend")


class BlendBuilder:
    """Turns export rows into training examples for one taxonomy and options."""

    def __init__(self, taxonomy: Taxonomy, options: BlendOptions, project_policy: str):
        self.taxonomy = taxonomy
        self.options = options
        self.policy = project_policy  # exports apply it already; rows from elsewhere may still say needs_caution
        self.index = CategoryIndex.for_taxonomy(taxonomy)
        hazards = [c for c in self.index.categories if c.hazard]
        if options.no_fine_grained:
            hazards = [c for c in hazards if c.kind != CategoryKind.FINE_GRAINED]
        self.codes = [c.code for c in hazards]
        self.names = {c.code: c.name for c in hazards}
        self.rng = random.Random(options.seed)
        self.skipped: dict[str, int] = {}

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _categories(self, row: dict[str, Any], where: str) -> list[str]:
        try:
            names = split_categories(row.get("violated_categories"), "violated_categories")
        except RowError as error:
            raise BlendError(f"{where}, field violated_categories: {error.message}") from None
        codes = []
        for name in names:
            category = self.index.resolve(name)
            if category is None:
                raise BlendError(f"{where}, field violated_categories: unknown category {name!r} for {self.taxonomy}")
            if category.code in self.names:
                codes.append(category.code)
        return codes

    def _listed_codes(self, violated: list[str]) -> list[str]:
        """The categories shown in this example's prompt: all, or violated plus a random subset of
        the others (dropped), in taxonomy order or shuffled."""
        codes = list(self.codes)
        if self.rng.random() < self.options.drop_probability:
            codes = [c for c in codes if c in violated or self.rng.random() < 0.5]
        if self.rng.random() < self.options.shuffle_probability:
            self.rng.shuffle(codes)
        return codes

    def example(self, row: dict[str, Any], split: str, where: str) -> dict[str, Any] | None:
        """One training example, or None when the row is left out (and why is counted)."""
        prompt_label = apply_needs_caution_policy(row.get("prompt_label"), self.policy)
        response = row.get("response")
        response_label = apply_needs_caution_policy(row.get("response_label"), self.policy) if response else None
        source = row.get("response_label_source")
        if prompt_label not in ("safe", "unsafe"):
            return self._skip("no prompt label")
        if response is not None and response_label not in ("safe", "unsafe"):
            return self._skip("response without a label")
        if self.options.no_refusals and source == LabelSource.REFUSAL_DATA_AUGMENTATION:
            return self._skip("refusal data (ablation)")
        if self.options.jury_labels_only and response is not None and source != LabelSource.LLM_JURY:
            return self._skip("response label not from the jury (ablation)")
        violated = self._categories(row, where) if "unsafe" in (prompt_label, response_label) else []
        listed = self._listed_codes(violated)
        return {
            "id": row["id"],
            "split": split,
            "kind": "safety",
            "messages": [
                {"role": "user", "content": render_nemoguard_prompt(self.taxonomy, row["prompt"], response, listed)}
            ],
            "completion": target_json(prompt_label, response_label, [self.names[c] for c in violated]),
            "text": row["prompt"],
            "response": response,
            "prompt_label": prompt_label,
            "response_label": response_label,
            "categories": violated,
            "response_label_source": source,
        }


def read_topic_following(path: Path) -> Iterator[dict[str, Any]]:
    """The documented topic-following JSONL: per line ``{"system": str, "messages": [{"role":
    "user"|"assistant", "content": str}, ...]}``; the last message is the assistant's target."""
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise BlendError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("system"), str):
                raise BlendError(f"{where}, field system: a string is required")
            messages = record.get("messages")
            if not isinstance(messages, list) or len(messages) < 2:
                raise BlendError(f"{where}, field messages: at least a user and an assistant message are required")
            for position, message in enumerate(messages):
                if (
                    not isinstance(message, dict)
                    or message.get("role") not in ("user", "assistant")
                    or not isinstance(message.get("content"), str)
                ):
                    raise BlendError(f"{where}, field messages[{position}]: needs role user/assistant and content")
            if messages[-1]["role"] != "assistant":
                raise BlendError(f"{where}, field messages: the last message must be the assistant's")
            yield {
                "id": f"topic-following:{number}",
                "split": "train",
                "kind": "topic_following",
                "messages": [{"role": "system", "content": record["system"]}, *messages[:-1]],
                "completion": messages[-1]["content"],
            }
