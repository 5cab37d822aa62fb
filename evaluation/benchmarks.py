"""The benchmark registry: guard benchmarks as lists of gold-labelled items.

Labels are booleans for the positive class of the benchmark's task: ``True`` means harmful
(prompt or response harmfulness) or refusal (refusal detection), the field's convention for
F1. Each benchmark names the source label values it maps (``labels``), so reports can print
what counted as positive.

Shipped benchmarks read the public copies under the data root (``settings.AEGIS_SHARED_DATA``,
by default ``<BASE_DIR>/../shared/data``); the published formats we cannot ship (WildGuardTest,
the Aegis 2.0 test split, BeaverTails and ToxicChat as released, a project's own export) read a
file given by path. Bad input raises ``ImportDataError`` naming the file, row or line and field.
What each public data set's rows hold (columns, flags, label words, the taxonomy of its
categories) is described once in ``taxonomy.datasets``, which the importer reads too.
"""

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.exporting import EXPORT_FORMATS
from annotation.importing.errors import ImportDataError, Location
from annotation.importing.readers import read_records
from guards.items import Conversation, Task
from taxonomy.datasets import (
    DATA_SETS,
    REFUSAL_LABELS,
    SAFETY_LABELS,
    DataSet,
    Record,
    RowError,
    guardreasoner_answer,
    guardreasoner_exchange,
    openai_moderation_flags,
    split_categories,
    text_field,
)

MAX_FIELD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class BenchmarkItem(Conversation):
    """One gold-labelled exchange (a conversation a guard judges, with its gold label); ``label``
    is True for the positive class (harmful or refusal).

    ``categories`` are the source's own hazard codes or names, where it has them.
    """

    label: bool
    categories: tuple[str, ...] = ()


Reader = Callable[["Benchmark", Path], list[BenchmarkItem]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    task: Task
    labels: Mapping[str, bool]
    description: str
    reader: Reader
    data_set: DataSet | None = None  # the public data set it reads (None: a project's export)
    shipped_path: str | None = None

    @property
    def shipped(self) -> bool:
        return self.shipped_path is not None

    @property
    def gold_taxonomy(self) -> str | None:
        """Slug of the taxonomy the items' categories are in (an export's: its project's)."""
        return self.data_set.taxonomy if self.data_set else None

    def load(self, path: str | Path | None = None, *, data_root: str | Path | None = None) -> list[BenchmarkItem]:
        """The items of the file at ``path``; without one, the shipped copy under the data root."""
        if path is None:
            if self.shipped_path is None:
                raise ValueError(f"benchmark {self.name!r} is not shipped: give the path of a {self.description} file")
            path = Path(data_root or default_data_root()) / self.shipped_path
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"benchmark {self.name!r}: {path} does not exist")
        items = self.reader(self, path)
        if not items:
            raise ImportDataError(f"no items for benchmark {self.name!r}", path.name)
        return items

    def label_of(self, value: Any, field: str) -> bool:
        """The gold label for a source value; raises RowError naming the accepted values."""
        key = _label_key(value)
        if key is None or key not in self.labels:
            raise RowError(f"{value!r} is not one of {', '.join(self.labels)}", field)
        return self.labels[key]


def default_data_root() -> Path:
    return Path(settings.AEGIS_SHARED_DATA)


def _label_key(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, str):
        return value.strip().lower()
    return None


def _records(path: Path) -> Iterator[tuple[Location, Record]]:
    return read_records(path, max_field_bytes=MAX_FIELD_BYTES)


def _collect(path: Path, parse: Callable[[Location, Record], BenchmarkItem | None]) -> list[BenchmarkItem]:
    """Items from every record of the file; a RowError becomes a located ImportDataError."""
    items = []
    for location, record in _records(path):
        try:
            item = parse(location, record)
        except RowError as error:
            raise ImportDataError(error.message, location, error.field) from None
        if item is not None:
            items.append(item)
    return items


def _position(location: Location) -> str:
    return str(location.row if location.row is not None else location.line)


def _optional_text(record: Record, field: str) -> str | None:
    """A string or null field, kept as is (an empty string stays a response)."""
    value = record.get(field)
    if value is not None and not isinstance(value, str):
        raise RowError(f"expected text or null, found {type(value).__name__}", field)
    return value


def _check_shape(benchmark: Benchmark, response: str | None, field: str) -> None:
    if benchmark.task == Task.PROMPT_HARM and response is not None:
        raise RowError("a prompt-harmfulness benchmark has no responses", field)
    if benchmark.task != Task.PROMPT_HARM and response is None:
        raise RowError(f"a {benchmark.task.label.lower()} benchmark needs a response", field)


def read_openai_moderation(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """JSONL of ``prompt`` and 0/1 flags; any flag 1 is unsafe, a missing flag is unknown."""

    def parse(location: Location, record: Record) -> BenchmarkItem:
        raised = tuple(flag for flag, value in openai_moderation_flags(record).items() if value == 1)
        label = benchmark.label_of("unsafe" if raised else "safe", "flags")
        return BenchmarkItem(_position(location), text_field(record, "prompt"), None, label, raised)

    return _collect(path, parse)


def read_xstest_prompts(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    def parse(location: Location, record: Record) -> BenchmarkItem:
        label = benchmark.label_of(text_field(record, "label"), "label")
        return BenchmarkItem(text_field(record, "id"), text_field(record, "prompt"), None, label)

    return _collect(path, parse)


def read_simple_safety_tests(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """Every prompt is unsafe; the harm area is the item's category."""

    def parse(location: Location, record: Record) -> BenchmarkItem:
        harm_area = text_field(record, "harm_area")
        label = benchmark.label_of("unsafe", "harm_area")
        return BenchmarkItem(text_field(record, "id"), text_field(record, "prompts_final"), None, label, (harm_area,))

    return _collect(path, parse)


def read_guardreasoner(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """GuardReasoner's ``{instruction, input, output}`` copies; the last word of ``output`` is
    the gold label (SafeRLHF and BeaverTails end an ``Answers:`` block with ``Response: …``)."""

    def parse(location: Location, record: Record) -> BenchmarkItem:
        prompt, response = guardreasoner_exchange(record)
        _check_shape(benchmark, response, "input")
        answer = guardreasoner_answer(record)
        if answer is None:
            raise RowError(f"expected {' or '.join(benchmark.labels)} at the end", "output")
        label = benchmark.label_of(answer, "output")
        return BenchmarkItem(_position(location), prompt, response, label)

    return _collect(path, parse)


def read_wildguardtest(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """WildGuardTest (allenai/wildguardmix): ``prompt``, ``response`` and the three label columns.

    A row without the task's label (prompt-only rows for the response tasks) is left out.
    """
    column = {
        Task.PROMPT_HARM: "prompt_harm_label",
        Task.RESPONSE_HARM: "response_harm_label",
        Task.REFUSAL: "response_refusal_label",
    }[benchmark.task]

    def parse(location: Location, record: Record) -> BenchmarkItem | None:
        prompt = text_field(record, "prompt")
        value = text_field(record, column, required=False)
        if value is None:
            if column not in record:
                raise RowError("missing field", column)
            return None
        response = _optional_text(record, "response") if benchmark.task != Task.PROMPT_HARM else None
        _check_shape(benchmark, response, "response")
        return BenchmarkItem(_position(location), prompt, response, benchmark.label_of(value, column))

    return _collect(path, parse)


def read_aegis2(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """The Aegis 2.0 release columns (also what a project's export writes).

    The prompt benchmark takes rows with a ``prompt_label``, the response benchmark rows with a
    ``response_label``; rows with a ``reconstruction_id_if_redacted`` are left out, since their
    prompt reads ``REDACTED`` and a guard cannot judge it.
    """
    column = "prompt_label" if benchmark.task == Task.PROMPT_HARM else "response_label"

    def parse(location: Location, record: Record) -> BenchmarkItem | None:
        uid = text_field(record, "id")
        prompt = text_field(record, "prompt")
        if column not in record:
            raise RowError("missing field", column)
        value = text_field(record, column, required=False)
        if value is None or text_field(record, "reconstruction_id_if_redacted", required=False):
            return None
        response = None
        if benchmark.task == Task.RESPONSE_HARM:
            response = _optional_text(record, "response")
            _check_shape(benchmark, response, "response")
        categories = tuple(split_categories(record.get("violated_categories"), "violated_categories"))
        return BenchmarkItem(uid, prompt, response, benchmark.label_of(value, column), categories)

    return _collect(path, parse)


def export_split_file(folder: Path, split: str = "test") -> Path:
    """The split's file in an export folder (``test.jsonl``, else ``.parquet``, else ``.csv``, else the
    release profile's ``test.json``)."""
    for fmt in (*EXPORT_FORMATS, "json"):
        candidate = folder / f"{split}.{fmt}"
        if candidate.is_file():
            return candidate
    names = ", ".join(f"{split}.{fmt}" for fmt in (*EXPORT_FORMATS, "json"))
    raise FileNotFoundError(f"{folder}: no {names} (is this an export folder with a {split} split?)")


def read_export(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """A project's export: the folder's test split, or one split file given directly."""
    return read_aegis2(benchmark, export_split_file(path) if path.is_dir() else path)


def _category_flags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError("expected an object of category flags", "category") from None
    if not isinstance(value, dict) or not all(isinstance(flag, bool) for flag in value.values()):
        raise RowError("expected an object of true/false category flags", "category")
    return tuple(name for name, flag in value.items() if flag)


def read_beavertails(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """BeaverTails as released: ``prompt``, ``response``, ``category`` flags, ``is_safe``."""

    def parse(location: Location, record: Record) -> BenchmarkItem:
        if "is_safe" not in record:
            raise RowError("missing field", "is_safe")
        label = benchmark.label_of(record["is_safe"], "is_safe")
        categories = _category_flags(record["category"]) if record.get("category") is not None else ()
        response = text_field(record, "response")
        return BenchmarkItem(_position(location), text_field(record, "prompt"), response, label, categories)

    return _collect(path, parse)


def read_toxicchat(benchmark: Benchmark, path: Path) -> list[BenchmarkItem]:
    """ToxicChat as released: ``conv_id``, ``user_input``, ``toxicity`` (1 toxic), ``jailbreaking``…"""

    def parse(location: Location, record: Record) -> BenchmarkItem:
        if record.get("toxicity") is None:
            raise RowError("missing field", "toxicity")
        label = benchmark.label_of(record["toxicity"], "toxicity")
        uid = text_field(record, "conv_id", required=False) or _position(location)
        return BenchmarkItem(uid, text_field(record, "user_input"), None, label)

    return _collect(path, parse)


def _gold_labels(task: Task, data_set: DataSet) -> Mapping[str, bool]:
    """The label words of a data set for a task (refusal columns say refusal or compliance)."""
    return REFUSAL_LABELS if task == Task.REFUSAL else data_set.labels


def _shipped(name: str, task: Task, description: str, reader: Reader) -> Benchmark:
    """A benchmark read from the public copy of the data set of the same name."""
    data_set = DATA_SETS[name]
    return Benchmark(name, task, _gold_labels(task, data_set), description, reader, data_set, data_set.shipped)


def _guardreasoner(name: str, task: Task, description: str, file: str) -> Benchmark:
    """A benchmark read from GuardReasoner's copy ``file`` (in the shipped folder)."""
    data_set = DATA_SETS["guardreasoner"]
    return Benchmark(name, task, _gold_labels(task, data_set), description, read_guardreasoner, data_set,
                     f"{data_set.shipped}/{file}.json")  # fmt: skip


def _released(name: str, task: Task, description: str, reader: Reader, data_set_name: str) -> Benchmark:
    """A benchmark read from a file of a released format, given by path (no copy is shipped)."""
    data_set = DATA_SETS[data_set_name]
    return Benchmark(name, task, _gold_labels(task, data_set), description, reader, data_set)


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        _shipped(
            "openai_moderation",
            Task.PROMPT_HARM,
            "OpenAI moderation evaluation set (any flag = 1 is unsafe)",
            read_openai_moderation,
        ),
        _shipped("xstest_prompts", Task.PROMPT_HARM, "XSTest prompts (label safe/unsafe)", read_xstest_prompts),
        _shipped("simple_safety_tests", Task.PROMPT_HARM, "SimpleSafetyTests (all unsafe)", read_simple_safety_tests),
        _guardreasoner(
            "aegis1_test", Task.PROMPT_HARM, "Aegis 1.0 test prompts (GuardReasoner copy)", "0_1_AegisSafetyTest"
        ),
        _guardreasoner(
            "harmbench_prompt", Task.PROMPT_HARM, "HarmBench prompts (GuardReasoner copy)", "0_3_harmbench_prompt"
        ),
        _guardreasoner("toxicchat", Task.PROMPT_HARM, "ToxicChat subset (GuardReasoner copy)", "0_8_toxic_chat"),
        _guardreasoner(
            "harmbench_response",
            Task.RESPONSE_HARM,
            "HarmBench responses (GuardReasoner copy)",
            "0_5_harmbench_response",
        ),
        _guardreasoner(
            "xstest_response_harm",
            Task.RESPONSE_HARM,
            "XSTest response harmfulness (GuardReasoner copy of WildGuard's XSTest-Resp)",
            "0_6_xstest_response_harmful",
        ),
        _guardreasoner(
            "xstest_response_refusal",
            Task.REFUSAL,
            "XSTest response refusal (GuardReasoner copy of WildGuard's XSTest-Resp)",
            "0_7_xstest_response_refusal",
        ),
        _guardreasoner("saferlhf", Task.RESPONSE_HARM, "PKU SafeRLHF responses (GuardReasoner copy)", "0_9_safe_rlhf"),
        _guardreasoner(
            "beavertails", Task.RESPONSE_HARM, "BeaverTails responses (GuardReasoner copy)", "0_A_beaver_tails"
        ),
        _released(
            "wildguardtest_prompt",
            Task.PROMPT_HARM,
            "WildGuardTest (prompt, response, prompt_harm_label, …)",
            read_wildguardtest,
            "wildguardtest",
        ),
        _released(
            "wildguardtest_response",
            Task.RESPONSE_HARM,
            "WildGuardTest (prompt, response, response_harm_label, …)",
            read_wildguardtest,
            "wildguardtest",
        ),
        _released(
            "wildguardtest_refusal",
            Task.REFUSAL,
            "WildGuardTest (prompt, response, response_refusal_label, …)",
            read_wildguardtest,
            "wildguardtest",
        ),
        _released(
            "aegis2_test_prompt",
            Task.PROMPT_HARM,
            "Aegis 2.0 test split (id, prompt, response, prompt_label, …)",
            read_aegis2,
            "aegis2",
        ),
        _released(
            "aegis2_test_response",
            Task.RESPONSE_HARM,
            "Aegis 2.0 test split (id, prompt, response, response_label, …)",
            read_aegis2,
            "aegis2",
        ),
        _released(
            "beavertails_release",
            Task.RESPONSE_HARM,
            "BeaverTails as released (prompt, response, category, is_safe)",
            read_beavertails,
            "beavertails",
        ),
        _released(
            "toxicchat_release",
            Task.PROMPT_HARM,
            "ToxicChat as released (conv_id, user_input, toxicity, jailbreaking, …)",
            read_toxicchat,
            "toxicchat",
        ),
        Benchmark(
            "export_prompt",
            Task.PROMPT_HARM,
            SAFETY_LABELS,
            "project export folder (its test split) or split file, prompt labels",
            read_export,
        ),
        Benchmark(
            "export_response",
            Task.RESPONSE_HARM,
            SAFETY_LABELS,
            "project export folder (its test split) or split file, response labels",
            read_export,
        ),
    )
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}") from None


def shipped_benchmarks() -> list[Benchmark]:
    return [benchmark for benchmark in BENCHMARKS.values() if benchmark.shipped]
