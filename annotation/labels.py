"""The one definition of label values, provenance values and their accepted spellings."""

from django.db import models

from core.errors import ApplicationError


class SafetyLabel(models.TextChoices):
    SAFE = "safe", "Safe"
    UNSAFE = "unsafe", "Unsafe"
    NEEDS_CAUTION = "needs_caution", "Needs Caution"


class RefusalLabel(models.TextChoices):
    """Whether a response complies with or refuses the prompt (XSTest's scheme)."""

    FULL_COMPLIANCE = "full_compliance", "Full compliance"
    FULL_REFUSAL = "full_refusal", "Full refusal"
    PARTIAL_REFUSAL = "partial_refusal", "Partial refusal"


class LabelSource(models.TextChoices):
    """Where a final label came from (the Aegis 2.0 ``*_label_source`` values plus ours)."""

    HUMAN = "human", "Human annotators"
    LLM_JURY = "llm_jury", "LLM jury"
    ADJUDICATED = "adjudicated", "Adjudicated by a reviewer"
    REFUSAL_DATA_AUGMENTATION = "refusal_data_augmentation", "Refusal data augmentation"
    IMPORTED = "imported", "Imported without provenance"


# Final labels that only a reviewer may change (imported and jury labels give way to humans).
FINAL_LABEL_SOURCES = (LabelSource.HUMAN, LabelSource.ADJUDICATED)


class NeedsCautionPolicy(models.TextChoices):
    UNSAFE = "unsafe", "Needs Caution counts as unsafe"
    SAFE = "safe", "Needs Caution counts as safe"


_SAFETY_SPELLINGS = {
    "safe": SafetyLabel.SAFE,
    "unsafe": SafetyLabel.UNSAFE,
    "needs_caution": SafetyLabel.NEEDS_CAUTION,
    "needs caution": SafetyLabel.NEEDS_CAUTION,
    "needs-caution": SafetyLabel.NEEDS_CAUTION,
}


def _parse_spelling(value: object, spellings: dict, choices: type[models.TextChoices]):
    label = spellings.get(value.strip().lower()) if isinstance(value, str) else None
    if label is None:
        raise ValueError(f"{value!r} is not one of {', '.join(choices.values)}")
    return label


def parse_safety_label(value: str) -> SafetyLabel:
    """``safe``/``unsafe``/``needs caution`` in any case; raises ValueError naming the choices."""
    return _parse_spelling(value, _SAFETY_SPELLINGS, SafetyLabel)


_LABEL_SOURCES = {source.value: source for source in LabelSource}


def parse_label_source(value: str) -> LabelSource:
    source = _LABEL_SOURCES.get(value)
    if source is None:
        raise ValueError(f"{value!r} is not one of {', '.join(_LABEL_SOURCES)}")
    return source


def apply_needs_caution_policy(label: str | None, policy: str) -> str | None:
    """Needs Caution becomes safe or unsafe under the project's policy; other labels pass."""
    return policy if label == SafetyLabel.NEEDS_CAUTION else label


_REFUSAL_SPELLINGS = {
    "full_compliance": RefusalLabel.FULL_COMPLIANCE,
    "1_full_compliance": RefusalLabel.FULL_COMPLIANCE,
    "compliance": RefusalLabel.FULL_COMPLIANCE,
    "full_refusal": RefusalLabel.FULL_REFUSAL,
    "2_full_refusal": RefusalLabel.FULL_REFUSAL,
    "refusal": RefusalLabel.FULL_REFUSAL,
    "partial_refusal": RefusalLabel.PARTIAL_REFUSAL,
    "3_partial_refusal": RefusalLabel.PARTIAL_REFUSAL,
}


def parse_refusal_label(value: str) -> RefusalLabel:
    """XSTest's ``1_full_compliance``… and the plain ``compliance``/``refusal`` spellings."""
    return _parse_spelling(value, _REFUSAL_SPELLINGS, RefusalLabel)


class LabelError(ApplicationError):
    """A label submission that breaks the labelling rules; names the field (the API answers
    ``{field: [message]}``, as for a serializer's field)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def response_body(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


def check_label_submission(
    *,
    has_response: bool,
    hazard_codes: list[str],
    prompt_label: str | None,
    response_label: str | None,
    categories: list[str],
) -> tuple[str, str | None, list[str]]:
    """The labelling rules, on the server: returns normalised (prompt, response, categories).

    A prompt label is required; a response label is required exactly when there is a response.
    Unsafe needs at least one category, an all-safe sample has none; codes must be hazard
    categories of the project's taxonomy.
    """
    try:
        prompt = parse_safety_label(prompt_label or "").value
    except ValueError as error:
        raise LabelError("prompt_label", str(error)) from None
    response = None
    if has_response:
        try:
            response = parse_safety_label(response_label or "").value
        except ValueError as error:
            raise LabelError("response_label", str(error)) from None
    elif response_label:
        raise LabelError("response_label", "this sample has no response to label")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise LabelError("categories", "expected a list of category codes")
    unknown = [c for c in categories if c not in hazard_codes]
    if unknown:
        raise LabelError("categories", f"not categories of this project's taxonomy: {', '.join(unknown)}")
    codes = list(dict.fromkeys(categories))
    labels = {prompt, response} - {None}
    if SafetyLabel.UNSAFE in labels and not codes:
        raise LabelError("categories", "an unsafe label needs at least one category")
    if labels == {SafetyLabel.SAFE} and codes:
        raise LabelError("categories", "a safe sample has no categories")
    return prompt, response, codes
