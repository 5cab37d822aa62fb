"""External guard predictions: read a file of raw guard outputs, parse each with a parser of the
format registry (``guards.formats.registry``) and line it up with a benchmark's items; the
prediction-file runner; scoring predictions against gold labels.

A prediction's ``label`` is True for the benchmark's positive class (harmful, or refusal) and
None when the output could not be parsed; scoring counts None as wrong (see ``metrics``).
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotation.importing.errors import ImportDataError, Location
from annotation.importing.readers import Record, read_records
from guards.formats.registry import get_parser, parser_formats
from guards.items import Prediction, Task
from guards.runners.base import check_task

from .benchmarks import MAX_FIELD_BYTES, Benchmark, BenchmarkItem, default_data_root, get_benchmark
from .metrics import BinaryResult, binary_metrics

# GuardReasoner's prediction folders (test/<size>/<folder>/generated_predictions.jsonl) and the
# benchmarks they answer; WildGuardTest's one file answers all three tasks.
GUARDREASONER_PREDICTION_BENCHMARKS = {
    "AegisSafetyTest": ("aegis1_test",),
    "HarmBenchPrompt": ("harmbench_prompt",),
    "HarmBenchResponse": ("harmbench_response",),
    "SimpleSafetyTests": ("simple_safety_tests",),
    "XSTestReponseHarmful": ("xstest_response_harm",),
    "XSTestResponseRefusal": ("xstest_response_refusal",),
    "ToxicChat": ("toxicchat",),
    "OpenAIModeration": ("openai_moderation",),
    "SafeRLHF": ("saferlhf",),
    "BeaverTails": ("beavertails",),
    "WildGuardTest": ("wildguardtest_prompt", "wildguardtest_response", "wildguardtest_refusal"),
}


def _text(record: Record, field: str, location: Location) -> str:
    value = record.get(field)
    if not isinstance(value, str):
        problem = "missing field" if value is None else f"expected text, found {type(value).__name__}"
        raise ImportDataError(problem, location, field)
    return value


def _uid(record: Record, field: str, location: Location) -> str:
    value = record.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(record, field, location)


def _score(record: Record, field: str, location: Location) -> float | None:
    """A probability of the positive class; numbers written as text (CSV) are read too."""
    value = record.get(field)
    if value is None or value == "":
        return None
    score = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            score = float(value)
    if score is None or not 0.0 <= score <= 1.0:
        raise ImportDataError(f"expected a probability between 0 and 1, found {value!r}", location, field)
    return score


def _check_alignment(record: Record, item: BenchmarkItem, location: Location) -> None:
    """Where the record carries the text it was asked about, it must hold the item's: the
    prompt in ``prompt`` (GuardReasoner's whole guard prompt holds it), the response in
    ``response``."""
    for field, text in (("prompt", item.prompt), ("response", item.response)):
        shown = record.get(field)
        if isinstance(shown, str) and text is not None and text not in shown:
            raise ImportDataError(
                f"the {field} does not hold the text of benchmark item {item.uid!r}: "
                "the file is not in the benchmark's order, or is for another benchmark",
                location,
                field,
            )


def _pair_by_id(
    rows: list[tuple[Location, Record]], items: Sequence[BenchmarkItem], id_field: str
) -> list[tuple[Location, Record, BenchmarkItem]]:
    by_uid = {item.uid: item for item in items}
    seen: dict[str, Location] = {}
    pairs = []
    for location, record in rows:
        uid = _uid(record, id_field, location)
        if uid not in by_uid:
            raise ImportDataError(f"{uid!r} is not an item of the benchmark", location, id_field)
        if uid in seen:
            raise ImportDataError(f"{uid!r} was predicted already at {seen[uid]}", location, id_field)
        seen[uid] = location
        pairs.append((location, record, by_uid[uid]))
    missing = [item.uid for item in items if item.uid not in seen]
    if missing:
        raise ImportDataError(f"no prediction for {len(missing)} items, e.g. {missing[:5]}", rows[-1][0].path)
    order = {item.uid: index for index, item in enumerate(items)}
    return sorted(pairs, key=lambda pair: order[pair[2].uid])


def _pair_by_order(
    rows: list[tuple[Location, Record]], items: Sequence[BenchmarkItem]
) -> list[tuple[Location, Record, BenchmarkItem]]:
    if len(rows) != len(items):
        raise ImportDataError(
            f"{len(rows)} predictions for {len(items)} benchmark items (pair by order needs equal counts)",
            rows[-1][0].path,
        )
    return [(location, record, item) for (location, record), item in zip(rows, items)]


def read_predictions(
    path: str | Path,
    items: Sequence[BenchmarkItem],
    task: Task,
    parser: str = "guardreasoner",
    *,
    output_field: str = "predict",
    id_field: str | None = None,
    score_field: str | None = None,
) -> list[Prediction]:
    """Parses a file of guard outputs (JSONL, JSON, CSV or Parquet) into one prediction per
    benchmark item, in the items' order.

    Records pair with items by ``id_field`` when given, else by order (the counts must match);
    a record's ``prompt`` and ``response`` fields, when present, must hold the item's texts.
    ``score_field`` names an optional probability of the positive class (for AUPRC).
    """
    guard_format = get_parser(parser, task)
    rows = list(read_records(path, max_field_bytes=MAX_FIELD_BYTES))
    pairs = _pair_by_id(rows, items, id_field) if id_field else _pair_by_order(rows, items)
    predictions = []
    for location, record, item in pairs:
        _check_alignment(record, item, location)
        parsed = guard_format.parse(_text(record, output_field, location), task, None)
        score = _score(record, score_field, location) if score_field else None
        predictions.append(Prediction(item.uid, parsed.label, score, parsed.categories, parsed.error))
    return predictions


class PredictionFileRunner:
    """Predictions written elsewhere (GuardReasoner's generated_predictions.jsonl, a NemoGuard,
    Llama Guard or WildGuard output file) behind the guard runners' interface
    (``guards.runners.base.GuardRunner``): ``read_predictions`` pairs the file's records with the
    items (by ``id_field``, else by order, so a file answers the whole benchmark it was made for:
    ``full_benchmark``)."""

    queue = "default"
    taxonomy = None
    threshold = None
    full_benchmark = True

    def __init__(
        self,
        path: str | Path,
        parser: str = "guardreasoner",
        *,
        name: str | None = None,
        output_field: str = "predict",
        id_field: str | None = None,
        score_field: str | None = None,
    ):
        if parser not in parser_formats():
            get_parser(parser, Task.PROMPT_HARM)  # raises the unknown-parser error
        self.path, self.parser = Path(path), parser
        self.name = name or f"{parser}:{self.path.name}"
        self.fields = {"output_field": output_field, "id_field": id_field, "score_field": score_field}
        self.tasks = parser_formats()[parser].tasks

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        task = check_task(self.name, self.tasks, task)
        return read_predictions(self.path, items, task, self.parser, **self.fields)

    def close(self) -> None:
        pass


def score_predictions(
    items: Sequence[BenchmarkItem], predictions: Sequence[Prediction], **options: Any
) -> BinaryResult:
    """Binary metrics of predictions against the items' gold labels (``metrics.binary_metrics``
    options pass through); the two lists must be in the same order."""
    if [item.uid for item in items] != [prediction.uid for prediction in predictions]:
        raise ValueError("predictions are not in the benchmark items' order")
    scores = [prediction.score for prediction in predictions]
    return binary_metrics(
        [item.label for item in items],
        [prediction.label for prediction in predictions],
        scores=scores if any(score is not None for score in scores) else None,
        **options,
    )


@dataclass(frozen=True)
class PredictionFile:
    """A GuardReasoner prediction file and one benchmark it answers."""

    path: Path
    model_size: str
    benchmark: Benchmark


def guardreasoner_prediction_files(data_root: str | Path | None = None) -> list[PredictionFile]:
    """The GuardReasoner prediction files present under the data root, with their benchmarks."""
    root = Path(data_root or default_data_root()) / "guardreasoner_benchmarks" / "test"
    files = []
    for path in sorted(root.glob("*/*/generated_predictions.jsonl")):
        names = GUARDREASONER_PREDICTION_BENCHMARKS.get(path.parent.name)
        if names is None:
            raise ValueError(f"{path}: no benchmark is known for the folder {path.parent.name!r}")
        for name in names:
            files.append(PredictionFile(path, path.parent.parent.name, get_benchmark(name)))
    return files
