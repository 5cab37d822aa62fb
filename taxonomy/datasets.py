"""The public data sets of the field, described once: names, file shapes (the columns a row has,
the columns that tell a file apart), their public copies, label vocabularies and the taxonomy
their categories are in. The importer (``annotation.importing.adapters``: rows -> samples) and
the benchmark loaders (``evaluation.benchmarks``: rows -> gold-labelled items) both read it.

Rows that do not fit raise ``RowError`` naming the field; the reader of the file adds where."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


class RowError(ValueError):
    """A record that does not fit its data set's shape; the reader of the file adds the location."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class DataSet:
    """A public data set's format: what its rows hold and where its categories live."""

    name: str
    title: str
    columns: tuple[str, ...] = ()  # every row has them
    signature: tuple[str, ...] = ()  # together, they tell a file of this format from the others
    shipped: str | None = None  # the public copy (a file, or a folder of files) under the shared data root
    taxonomy: str | None = None  # slug of the built-in taxonomy its category codes or names are in
    labels: Mapping[str, bool] = field(default_factory=dict)  # gold label value -> positive (harmful/unsafe)


# Label vocabularies: value -> True for the positive class (harmful, unsafe or refusal).
SAFETY_LABELS = {"unsafe": True, "safe": False}
HARM_LABELS = {"harmful": True, "unharmful": False}
REFUSAL_LABELS = {"refusal": True, "compliance": False}

OPENAI_MODERATION_FLAGS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
# SimpleSafetyTests' five harm areas as Aegis 2.0 category names.
SIMPLE_SAFETY_TESTS_HARM_AREAS = {
    "Suicide, Self-Harm, and Eating Disorders": ["Suicide and Self Harm"],
    "Physical harm and Violence": ["Violence"],
    "Illegal and Highly Regulated items": ["Illegal Activity"],
    "Scams and fraud": ["Fraud/Deception"],
    "Child safety": ["Sexual (minor)"],
}
GUARDREASONER_EXCHANGE = re.compile(
    r"\AHuman user:\n(?P<prompt>.*?)\n\nAI assistant:\n(?P<response>.*?)\n*\Z", re.DOTALL
)
GUARDREASONER_ANSWER = re.compile(rf"({'|'.join([*HARM_LABELS, *REFUSAL_LABELS])})\s*\Z", re.IGNORECASE)

# In the order the importer tries them when it detects a file's format (ties: the first wins).
DATA_SETS: dict[str, DataSet] = {
    data_set.name: data_set
    for data_set in (
        DataSet(
            "xstest_completions",
            "XSTest model completions with two annotators' refusal labels",
            columns=("id", "type", "prompt", "completion", "annotation_1", "annotation_2"),
            signature=("id", "type", "prompt", "completion", "annotation_1", "annotation_2"),
        ),
        DataSet(
            "openai_moderation",
            "OpenAI moderation evaluation set",
            signature=("prompt", "S", "H", "V", "HR", "SH"),
            shipped="openai_moderation/samples-1680.jsonl.gz",
            taxonomy="openai-moderation",
            labels=SAFETY_LABELS,
        ),
        DataSet(
            "aegis2",
            "Aegis 2.0 release",
            columns=("id", "prompt", "prompt_label"),
            signature=("id", "prompt", "prompt_label"),
            taxonomy="aegis-2.0",
            labels=SAFETY_LABELS,
        ),
        DataSet(
            "simple_safety_tests",
            "SimpleSafetyTests",
            columns=("id", "harm_area", "prompts_final"),
            signature=("id", "harm_area", "prompts_final"),
            shipped="simple_safety_tests/SimpleSafetyTests_test_cases.csv",
            labels=SAFETY_LABELS,
        ),
        DataSet(
            "xstest_prompts",
            "XSTest prompts",
            columns=("id", "prompt", "label"),
            signature=("id", "prompt", "label", "type"),
            shipped="xstest/xstest_prompts.csv",
            labels=SAFETY_LABELS,
        ),
        DataSet("hh_rlhf", "Anthropic HH-RLHF pairs", signature=("chosen", "rejected")),
        DataSet("aart", "AART adversarial prompts", columns=("prompt", "crime"), signature=("prompt", "crime")),
        DataSet(
            "guardreasoner",
            "GuardReasoner's gold-labelled copies of guard benchmarks",
            columns=("input", "output"),
            signature=("input", "output"),
            shipped="guardreasoner_benchmarks/benchmark",
            labels=HARM_LABELS,  # refusal files: REFUSAL_LABELS
        ),
        DataSet("aegis1", "Aegis 1.0", columns=("text",), signature=("text", "text_type")),
        DataSet(
            "wildguardtest",
            "WildGuardTest (allenai/wildguardmix)",
            columns=("prompt", "response", "prompt_harm_label", "response_harm_label", "response_refusal_label"),
            labels=HARM_LABELS,  # response_refusal_label: REFUSAL_LABELS
        ),
        DataSet(
            "beavertails",
            "BeaverTails as released",
            columns=("prompt", "response", "category", "is_safe"),
            taxonomy="beavertails",
            labels={"false": True, "true": False},  # is_safe
        ),
        DataSet(
            "toxicchat",
            "ToxicChat as released",
            columns=("conv_id", "user_input", "toxicity", "jailbreaking"),
            labels={"1": True, "0": False},  # toxicity
        ),
    )
}


def text_field(record: Record, name: str, *, required: bool = True) -> str | None:
    """A string field; empty CSV cells and JSON nulls count as missing."""
    if name not in record:
        if required:
            raise RowError("missing field", name)
        return None
    value = record[name]
    if value is None or value == "":
        if required:
            raise RowError("empty value", name)
        return None
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise RowError(f"expected text, found {type(value).__name__}", name)
    return value


def split_categories(value: Any, name: str) -> list[str]:
    """A category list: comma-separated text or a list of strings; empty or null means none."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise RowError("expected a comma-separated string or a list of strings", name)


def openai_moderation_flags(record: Record) -> dict[str, int]:
    """The 0/1 flags a row has, in the set's order (a missing or null flag is unknown)."""
    flags = {}
    for flag in OPENAI_MODERATION_FLAGS:
        if record.get(flag) is not None:
            if record[flag] not in (0, 1):
                raise RowError(f"expected 0 or 1, found {record[flag]!r}", flag)
            flags[flag] = int(record[flag])
    if not flags:
        raise RowError(f"none of the flags {', '.join(OPENAI_MODERATION_FLAGS)} is present", "S")
    return flags


def guardreasoner_exchange(record: Record) -> tuple[str, str | None]:
    """The prompt and response (None for a prompt-only row) of a GuardReasoner row's ``input``."""
    match = GUARDREASONER_EXCHANGE.match(text_field(record, "input"))
    if not match:
        raise RowError("expected 'Human user:\\n…\\n\\nAI assistant:\\n…'", "input")
    response = match.group("response")
    return match.group("prompt"), None if response == "None" else response


def guardreasoner_answer(record: Record) -> str | None:
    """The gold label word ending a GuardReasoner row's ``output``, lower-cased (None if none)."""
    answer = GUARDREASONER_ANSWER.search(text_field(record, "output").strip())
    return answer.group(1).lower() if answer else None
