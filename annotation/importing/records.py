"""What an adapter makes of one source record, before it is stored."""

import hashlib
from dataclasses import dataclass, field

import orjson

from taxonomy.datasets import RowError

ROLES = ("system", "user", "assistant")


@dataclass
class AnnotationRecord:
    annotator: str
    prompt_label: str | None = None
    response_label: str | None = None
    response_refusal: str | None = None
    categories: list[str] = field(default_factory=list)


@dataclass
class FinalLabelRecord:
    prompt_label: str | None
    prompt_label_source: str | None
    response_label: str | None = None
    response_label_source: str | None = None
    response_refusal: str | None = None
    categories: list[str] = field(default_factory=list)


@dataclass
class SampleRecord:
    source_id: str
    turns: list[dict[str, str]]
    uid: str | None = None
    reconstruction_id: str | None = None
    metadata: dict = field(default_factory=dict)
    final_label: FinalLabelRecord | None = None
    annotations: list[AnnotationRecord] = field(default_factory=list)
    response_model: str | None = None

    @property
    def content_hash(self) -> str:
        """Identity of the content: the turns, for redacted prompts the reconstruction id, and
        where the source names it the model that wrote the response (two models' identical
        completions are two samples with their own labels)."""
        identity = [self.turns, self.reconstruction_id]
        if self.response_model:
            identity.append(self.response_model)
        return hashlib.sha256(orjson.dumps(identity)).hexdigest()


def dialogue(prompt: str, response: str | None) -> list[dict[str, str]]:
    turns = [{"role": "user", "content": prompt}]
    if response is not None:
        turns.append({"role": "assistant", "content": response})
    return turns


def prompt_and_response(turns: list[dict[str, str]]) -> tuple[str, str | None]:
    """The exchange a guard classifies: the last assistant turn and the user turn before it.

    Without a final assistant turn the prompt is the last user turn and the response is None.
    """
    if not turns:
        raise RowError("a sample needs at least one turn", "turns")
    response = None
    end = len(turns)
    if turns[-1]["role"] == "assistant":
        response = turns[-1]["content"]
        end -= 1
    for turn in reversed(turns[:end]):
        if turn["role"] == "user":
            return turn["content"], response
    raise RowError("a sample needs a user turn", "turns")


def check_turns(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RowError("must be a non-empty list of {role, content} objects", "turns")
    turns = []
    for index, turn in enumerate(value, start=1):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise RowError(f"turn {index} must be an object with a string 'content'", "turns")
        if turn.get("role") not in ROLES:
            raise RowError(f"turn {index}: role {turn.get('role')!r} is not one of {', '.join(ROLES)}", "turns")
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns
