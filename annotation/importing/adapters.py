"""One adapter per source format: it turns a source record into SampleRecords.

What a public data set's rows hold (columns, flags, label words, category mappings) is described
once in ``taxonomy.datasets``; adapters make samples of it. Storing, de-duplication and
transactions belong to ``annotation.services.import_samples``.
"""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from taxonomy.datasets import (
    DATA_SETS,
    HARM_LABELS,
    REFUSAL_LABELS,
    SIMPLE_SAFETY_TESTS_HARM_AREAS,
    DataSet,
    Record,
    RowError,
    guardreasoner_answer,
    guardreasoner_exchange,
    openai_moderation_flags,
    split_categories,
    text_field,
)
from taxonomy.models import Taxonomy, TaxonomyMapping
from taxonomy.selectors import CategoryIndex, map_codes, mapping_table

from ..labels import LabelSource, SafetyLabel, parse_label_source, parse_refusal_label, parse_safety_label
from ..release import SOURCE_SPLIT_KEY, split_in_filename
from .records import (
    AnnotationRecord,
    FinalLabelRecord,
    SampleRecord,
    check_turns,
    dialogue,
)


@dataclass
class AdapterContext:
    """What an adapter needs besides the record: the project's categories, the file, and the
    tables mapping other taxonomies' codes onto the project's (read once per import, not per row)."""

    categories: CategoryIndex
    filename: str
    foreign_tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def for_taxonomy(cls, taxonomy: Taxonomy, *, filename: str) -> "AdapterContext":
        """The context of an import into a project of ``taxonomy``: for each other taxonomy (its
        latest version), the mapping onto ``taxonomy`` where there is one."""
        latest: dict[str, Taxonomy] = {}
        for candidate in Taxonomy.objects.order_by("slug", "-version"):
            latest.setdefault(candidate.slug, candidate)
        mappings = TaxonomyMapping.objects.filter(source__in=latest.values(), target=taxonomy).select_related("source")
        tables = {mapping.source.slug: mapping_table(mapping) for mapping in mappings}
        return cls(categories=CategoryIndex.for_taxonomy(taxonomy), filename=filename, foreign_tables=tables)

    def resolve_categories(self, values: list[str], field_name: str) -> list[str]:
        """Category names, codes or aliases → codes of the project's taxonomy, in order."""
        codes: list[str] = []
        for value in values:
            category = self.categories.resolve(value)
            if category is None:
                raise RowError(f"unknown category {value!r} in taxonomy {self.categories.taxonomy}", field_name)
            if category.code not in codes:
                codes.append(category.code)
        return codes

    def parse_categories(self, value: Any, field_name: str) -> list[str]:
        """A category list (comma-separated text or a list) → codes; a whole-string alias wins
        over splitting, since some aliases (BeaverTails keys) hold commas."""
        if isinstance(value, str) and value.strip() and (category := self.categories.resolve(value)):
            return [category.code]
        return self.resolve_categories(split_categories(value, field_name), field_name)

    def known_categories(self, names: list[str]) -> list[str]:
        """Like resolve_categories, but drops names the project's taxonomy lacks."""
        return [c.code for c in filter(None, map(self.categories.resolve, names))]

    def map_from(self, taxonomy_slug: str, codes: list[str]) -> list[str]:
        """Codes of another built-in taxonomy mapped onto the project's (empty if unmapped)."""
        table = self.foreign_tables.get(taxonomy_slug)
        return map_codes(codes, table) if table is not None else []


def safety_label(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_safety_label(value).value
    except ValueError as error:
        raise RowError(str(error), name) from None


def refusal_label(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_refusal_label(value).value
    except ValueError as error:
        raise RowError(str(error), name) from None


def label_source(value: str | None, name: str) -> str:
    if value is None:
        return LabelSource.IMPORTED.value
    try:
        return parse_label_source(value).value
    except ValueError as error:
        raise RowError(str(error), name) from None


class Adapter(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    default_source: ClassVar[str]
    data_set: ClassVar[DataSet | None] = None  # the public data set it reads (None: our own format)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns a file must have (checked against a CSV or Parquet header before any row)."""
        return self.data_set.columns if self.data_set else ()

    def source_name_for(self, filename: str) -> str:
        return self.default_source

    @abstractmethod
    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        """The samples one source record holds (most formats: one; HH-RLHF: two)."""


class Aegis2Adapter(Adapter):
    name = "aegis2"
    data_set = DATA_SETS[name]
    description = "Aegis 2.0 release schema (also what export writes); a split in the file name is kept"
    default_source = "aegis2"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        uid = text_field(record, "id")
        prompt = text_field(record, "prompt")
        response = record.get("response")
        if response is not None and not isinstance(response, str):
            raise RowError(f"expected text or null, found {type(response).__name__}", "response")
        if "prompt_label" not in record:
            raise RowError("missing field", "prompt_label")
        # Null only where just the response was labelled (as our export writes such rows).
        prompt_label = safety_label(text_field(record, "prompt_label", required=False), "prompt_label")
        response_label = safety_label(text_field(record, "response_label", required=False), "response_label")
        if response_label is not None and response is None:
            raise RowError("a response label needs a response", "response_label")
        categories = ctx.parse_categories(record.get("violated_categories"), "violated_categories")
        final = FinalLabelRecord(
            prompt_label=prompt_label,
            prompt_label_source=(
                label_source(text_field(record, "prompt_label_source", required=False), "prompt_label_source")
                if prompt_label is not None
                else None
            ),
            response_label=response_label,
            response_label_source=(
                label_source(text_field(record, "response_label_source", required=False), "response_label_source")
                if response_label is not None
                else None
            ),
            categories=categories,
        )
        return [
            SampleRecord(
                source_id=uid,
                uid=uid,
                turns=dialogue(prompt, response),
                reconstruction_id=text_field(record, "reconstruction_id_if_redacted", required=False),
                metadata={SOURCE_SPLIT_KEY: split} if (split := split_in_filename(ctx.filename)) else {},
                final_label=final,
            )
        ]


class Aegis1Adapter(Adapter):
    name = "aegis1"
    data_set = DATA_SETS[name]
    description = "Aegis 1.0: text, text_type and one label column per annotator (labels_0 … labels_4)"
    default_source = "aegis1"
    annotator_columns = tuple(f"labels_{i}" for i in range(5))
    role_line = re.compile(r"^(user|assistant|system|response|agent)\s*:\s?", re.IGNORECASE | re.MULTILINE)

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        text = text_field(record, "text")
        annotations = []
        for column in self.annotator_columns:
            value = text_field(record, column, required=False)
            if value is None:
                continue
            names = split_categories(value, column)
            lowered = {n.lower() for n in names}
            if lowered == {"safe"}:
                label, codes = SafetyLabel.SAFE.value, []
            elif lowered == {"needs caution"}:
                label, codes = SafetyLabel.NEEDS_CAUTION.value, []
            else:
                label, codes = SafetyLabel.UNSAFE.value, ctx.resolve_categories(names, column)
            annotations.append(
                AnnotationRecord(annotator=f"{self.default_source}.{column}", prompt_label=label, categories=codes)
            )
        source_id = text_field(record, "id", required=False) or str(index)
        return [
            SampleRecord(
                source_id=source_id,
                turns=self.turns(text),
                metadata={"text_type": record.get("text_type")},
                annotations=annotations,
            )
        ]

    def turns(self, text: str) -> list[dict[str, str]]:
        """Splits ``user: … / assistant: …`` transcripts; anything else is one user turn."""
        matches = list(self.role_line.finditer(text))
        if not matches or matches[0].start() != 0:
            return dialogue(text, None)
        turns = []
        for match, following in zip(matches, matches[1:] + [None]):
            role = match.group(1).lower()
            role = {"response": "assistant", "agent": "assistant"}.get(role, role)
            content = text[match.end() : following.start() if following else len(text)].strip()
            turns.append({"role": role, "content": content})
        return turns if any(t["role"] == "user" for t in turns) else dialogue(text, None)


class OpenAIModerationAdapter(Adapter):
    name = "openai_moderation"
    data_set = DATA_SETS[name]
    description = "OpenAI moderation evaluation set: prompt + flags S H V HR SH S3 H2 V2"
    default_source = "openai_moderation"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        prompt = text_field(record, "prompt")
        flags = openai_moderation_flags(record)
        raised = [flag for flag, value in flags.items() if value == 1]
        final = FinalLabelRecord(
            prompt_label=(SafetyLabel.UNSAFE if raised else SafetyLabel.SAFE).value,
            prompt_label_source=LabelSource.IMPORTED.value,
            categories=ctx.map_from(self.data_set.taxonomy, raised),
        )
        return [
            SampleRecord(
                source_id=str(index), turns=dialogue(prompt, None), metadata={"flags": flags}, final_label=final
            )
        ]


class XSTestPromptsAdapter(Adapter):
    name = "xstest_prompts"
    data_set = DATA_SETS[name]
    description = "XSTest prompts: id, prompt, type, label (safe/unsafe), focus, note"
    default_source = "xstest"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        final = FinalLabelRecord(
            prompt_label=safety_label(text_field(record, "label"), "label"),
            prompt_label_source=LabelSource.IMPORTED.value,
        )
        metadata = {key: record.get(key) for key in ("type", "focus", "note") if record.get(key)}
        return [
            SampleRecord(
                source_id=text_field(record, "id"),
                turns=dialogue(text_field(record, "prompt"), None),
                metadata=metadata,
                final_label=final,
            )
        ]


class XSTestCompletionsAdapter(Adapter):
    name = "xstest_completions"
    data_set = DATA_SETS[name]
    description = "XSTest model completions with two human annotators' refusal labels"
    default_source = "xstest_completions"
    annotator_columns = ("annotation_1", "annotation_2")
    automatic_columns = ("gpt4_label", "strmatch_label")

    def model_of(self, filename: str) -> str | None:
        """``xstest_v2_completions_gpt4.csv`` → ``gpt4``."""
        match = re.search(r"completions_([A-Za-z0-9]+)", filename)
        return match.group(1) if match else None

    def source_name_for(self, filename: str) -> str:
        """``xstest_v2_completions_gpt4.csv`` → ``xstest_completions_gpt4``."""
        model = self.model_of(filename)
        return f"{self.default_source}_{model}" if model else self.default_source

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        prompt_type = text_field(record, "type")
        annotations = [
            AnnotationRecord(
                annotator=f"xstest.{column}",
                response_refusal=refusal_label(text_field(record, column), column),
            )
            for column in self.annotator_columns
        ]
        final = FinalLabelRecord(
            prompt_label=(SafetyLabel.UNSAFE if prompt_type.startswith("contrast_") else SafetyLabel.SAFE).value,
            prompt_label_source=LabelSource.IMPORTED.value,
            response_refusal=refusal_label(text_field(record, "final_label", required=False), "final_label"),
        )
        model = self.model_of(ctx.filename)
        metadata = {"type": prompt_type, "response_model": model}
        for column in self.automatic_columns:
            if record.get(column):
                metadata[column] = record[column]
        return [
            SampleRecord(
                source_id=text_field(record, "id"),
                turns=dialogue(text_field(record, "prompt"), text_field(record, "completion", required=False) or ""),
                metadata=metadata,
                final_label=final,
                annotations=annotations,
                response_model=model,
            )
        ]


class SimpleSafetyTestsAdapter(Adapter):
    name = "simple_safety_tests"
    data_set = DATA_SETS[name]
    description = "SimpleSafetyTests: 100 unsafe prompts in five harm areas"
    default_source = "simple_safety_tests"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        harm_area = text_field(record, "harm_area")
        final = FinalLabelRecord(
            prompt_label=SafetyLabel.UNSAFE.value,
            prompt_label_source=LabelSource.IMPORTED.value,
            categories=ctx.known_categories(SIMPLE_SAFETY_TESTS_HARM_AREAS.get(harm_area, [])),
        )
        return [
            SampleRecord(
                source_id=text_field(record, "id"),
                turns=dialogue(text_field(record, "prompts_final"), None),
                metadata={"harm_area": harm_area, "category": record.get("category")},
                final_label=final,
            )
        ]


class AARTAdapter(Adapter):
    name = "aart"
    data_set = DATA_SETS[name]
    description = "AART adversarial prompts (all unsafe; crime and use case kept as metadata)"
    default_source = "aart"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        final = FinalLabelRecord(prompt_label=SafetyLabel.UNSAFE.value, prompt_label_source=LabelSource.IMPORTED.value)
        metadata = {
            key: record[key]
            for key in ("crime", "use_case", "region", "medium_keyword", "why_prompt_harmful")
            if record.get(key)
        }
        return [
            SampleRecord(
                source_id=str(index),
                turns=dialogue(text_field(record, "prompt"), None),
                metadata=metadata,
                final_label=final,
            )
        ]


class HHRLHFAdapter(Adapter):
    name = "hh_rlhf"
    data_set = DATA_SETS[name]
    description = "Anthropic HH-RLHF pairs: the chosen and rejected transcripts become two samples"
    default_source = "hh_rlhf"
    speaker = re.compile(r"\n\n(Human|Assistant):")

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        samples = []
        for transcript in ("chosen", "rejected"):
            text = text_field(record, transcript)
            samples.append(
                SampleRecord(
                    source_id=f"{index}-{transcript}",
                    turns=self.turns(text, transcript),
                    metadata={"transcript": transcript},
                )
            )
        return samples

    def turns(self, text: str, field_name: str) -> list[dict[str, str]]:
        parts = self.speaker.split(text)
        if parts[0].strip() or len(parts) < 3:
            raise RowError("expected a transcript of '\\n\\nHuman: …' and '\\n\\nAssistant: …' turns", field_name)
        roles = {"Human": "user", "Assistant": "assistant"}
        return [{"role": roles[who], "content": said.strip()} for who, said in zip(parts[1::2], parts[2::2])]


class GuardReasonerAdapter(Adapter):
    """The ``{instruction, input, output}`` benchmark files in guardreasoner_benchmarks."""

    name = "guardreasoner"
    data_set = DATA_SETS[name]
    description = "Guard benchmark JSON: instruction/input/output with harmful/unharmful or refusal/compliance"
    default_source = "guardreasoner"

    def source_name_for(self, filename: str) -> str:
        """``0_8_toxic_chat.json`` → ``toxic_chat``."""
        stem = Path(filename).name.split(".")[0]
        return re.sub(r"^\d+_[0-9A-Za-z]_", "", stem).lower() or self.default_source

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        prompt, response = guardreasoner_exchange(record)
        word = guardreasoner_answer(record)
        if word is None:
            raise RowError("expected harmful, unharmful, refusal or compliance", "output")
        final = FinalLabelRecord(prompt_label=None, prompt_label_source=None)
        if word in REFUSAL_LABELS:
            if response is None:
                raise RowError("a refusal label needs a response", "output")
            final.response_refusal = refusal_label(word, "output")
        else:
            label = (SafetyLabel.UNSAFE if HARM_LABELS[word] else SafetyLabel.SAFE).value
            if response is None:
                final.prompt_label, final.prompt_label_source = label, LabelSource.IMPORTED.value
            else:
                final.response_label, final.response_label_source = label, LabelSource.IMPORTED.value
        return [SampleRecord(source_id=str(index), turns=dialogue(prompt, response), final_label=final)]


class GenericJSONLAdapter(Adapter):
    """Our documented format (README, "Generic JSONL")."""

    name = "generic"
    description = "Generic JSONL: prompt/response or turns, optional labels, categories and annotations"
    default_source = "generic"

    def parse(self, record: Record, index: int, ctx: AdapterContext) -> list[SampleRecord]:
        if "turns" in record:
            turns = check_turns(record["turns"])
        else:
            response = record.get("response")
            if response is not None and not isinstance(response, str):
                raise RowError(f"expected text or null, found {type(response).__name__}", "response")
            turns = dialogue(text_field(record, "prompt"), response)
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            raise RowError("expected an object", "metadata")
        prompt_label = safety_label(text_field(record, "prompt_label", required=False), "prompt_label")
        response_label = safety_label(text_field(record, "response_label", required=False), "response_label")
        refusal = refusal_label(text_field(record, "response_refusal", required=False), "response_refusal")
        final = None
        if prompt_label or response_label or refusal:
            final = FinalLabelRecord(
                prompt_label=prompt_label,
                prompt_label_source=label_source(
                    text_field(record, "prompt_label_source", required=False), "prompt_label_source"
                )
                if prompt_label
                else None,
                response_label=response_label,
                response_label_source=label_source(
                    text_field(record, "response_label_source", required=False), "response_label_source"
                )
                if response_label
                else None,
                response_refusal=refusal,
                categories=ctx.parse_categories(record.get("categories"), "categories"),
            )
        uid = text_field(record, "id", required=False)
        return [
            SampleRecord(
                source_id=uid or str(index),
                uid=uid,
                turns=turns,
                reconstruction_id=text_field(record, "reconstruction_id", required=False),
                metadata=metadata,
                final_label=final,
                annotations=self.annotations(record.get("annotations", []), ctx),
            )
        ]

    def annotations(self, raw: Any, ctx: AdapterContext) -> list[AnnotationRecord]:
        if not isinstance(raw, list):
            raise RowError("expected a list of objects", "annotations")
        annotations = []
        for position, item in enumerate(raw, start=1):
            where = f"annotations[{position}]"
            if not isinstance(item, dict):
                raise RowError("expected an object", where)
            annotator = item.get("annotator")
            if not isinstance(annotator, str) or not annotator.strip():
                raise RowError("needs an 'annotator' name", f"{where}.annotator")
            annotations.append(
                AnnotationRecord(
                    annotator=annotator.strip(),
                    prompt_label=safety_label(
                        text_field(item, "prompt_label", required=False), f"{where}.prompt_label"
                    ),
                    response_label=safety_label(
                        text_field(item, "response_label", required=False), f"{where}.response_label"
                    ),
                    response_refusal=refusal_label(
                        text_field(item, "response_refusal", required=False), f"{where}.response_refusal"
                    ),
                    categories=ctx.parse_categories(item.get("categories"), f"{where}.categories"),
                )
            )
        return annotations


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        Aegis2Adapter(),
        Aegis1Adapter(),
        OpenAIModerationAdapter(),
        XSTestPromptsAdapter(),
        XSTestCompletionsAdapter(),
        SimpleSafetyTestsAdapter(),
        AARTAdapter(),
        HHRLHFAdapter(),
        GuardReasonerAdapter(),
        GenericJSONLAdapter(),
    )
}


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}: choose one of {', '.join(ADAPTERS)}") from None
