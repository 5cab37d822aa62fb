"""What every prompt format is made of (``GuardFormat``), and the pieces the formats share: the
conversation section with its defused sample text, the answer's opening for one-pass scoring,
and a parsed answer (``GuardVerdict``, read for one task as ``ParsedOutput``).

Sample text is data, never instructions: it only ever appears inside the conversation section,
the template's own markers inside it are defused, and its lines are indented so that no line of
a message can pose as a role line of the template.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guards.items import Task

if TYPE_CHECKING:
    from taxonomy.models import Taxonomy
    from taxonomy.selectors import CategoryIndex

BEGIN_CATEGORIES = "<BEGIN UNSAFE CONTENT CATEGORIES>"
END_CATEGORIES = "<END UNSAFE CONTENT CATEGORIES>"
BEGIN_CONVERSATION = "<BEGIN CONVERSATION>"
END_CONVERSATION = "<END CONVERSATION>"
MARKERS = (BEGIN_CATEGORIES, END_CATEGORIES, BEGIN_CONVERSATION, END_CONVERSATION)
_MARKER_PATTERN = re.compile("|".join(re.escape(m).replace(r"\ ", r"\s+") for m in MARKERS), re.IGNORECASE)

# A rendered prompt: one user turn (chat formats) or raw text (text-completion formats) as a
# string, or whole chat messages.
Rendered = str | list[dict[str, str]]


def defuse(text: str) -> str:
    """A message as inert data: template markers lose their angle brackets; continuation lines
    are indented so none can start like ``user:`` or ``response: agent:``."""
    text = _MARKER_PATTERN.sub(lambda match: match.group(0).replace("<", "‹").replace(">", "›"), text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\n  ")


def render_conversation(user: str, response: str | None = None) -> str:
    """The conversation section shared by every template: markers, then defused role lines."""
    conversation = [f"user: {defuse(user)}"]
    if response is not None:
        conversation.append(f"response: agent: {defuse(response)}")
    return f"{BEGIN_CONVERSATION}\n\n" + "\n\n".join(conversation) + f"\n\n{END_CONVERSATION}"


@dataclass(frozen=True)
class AnswerOpening:
    """Where a guard's answer states its labels, for reading them in one forward pass (teacher
    forcing): the text before each label word (each label word follows its text; the second
    text comes after the first label), the two words, and what closes an answer that names no
    category (the categories are generated only when wanted)."""

    before_labels: tuple[str, ...]
    closing: str
    positive: str = "unsafe"
    negative: str = "safe"


@dataclass(frozen=True)
class GuardVerdict:
    """A guard's answer; ``error`` is set (and the labels None) when it could not be parsed."""

    prompt_label: str | None
    response_label: str | None
    categories: tuple[str, ...]
    unknown_categories: tuple[str, ...]
    raw: str
    error: str | None = None

    @property
    def parsed(self) -> bool:
        return self.error is None


def verdict_failure(raw: str, error: str) -> GuardVerdict:
    return GuardVerdict(None, None, (), (), raw, error)


def safety(value: object) -> str | None:
    """``safe`` or ``unsafe`` as written (any case, spaces around), else None."""
    text = str(value).strip().lower() if value is not None else ""
    return text if text in ("safe", "unsafe") else None


def resolve_categories(names: list[str], index: "CategoryIndex | None") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The codes of the names the taxonomy knows (once each, in order), and the names it does not."""
    known: list[str] = []
    unknown: list[str] = []
    for name in filter(None, (n.strip() for n in names)):
        category = index.resolve(name) if index else None
        if category is None:
            unknown.append(name)
        elif category.code not in known:
            known.append(category.code)
    return tuple(known), tuple(unknown)


@dataclass(frozen=True)
class ParsedOutput:
    """A parser's reading of one output for one task; ``error`` says why ``label`` is None."""

    label: bool | None
    categories: tuple[str, ...] = ()
    error: str | None = None


def from_verdict(verdict: GuardVerdict, task: Task) -> ParsedOutput:
    """A parsed guard verdict read for one task: its label for the task, its categories."""
    if not verdict.parsed:
        return ParsedOutput(None, error=verdict.error)
    label = verdict.prompt_label if task == Task.PROMPT_HARM else verdict.response_label
    if label is None:
        return ParsedOutput(None, error=f"the output has no {task.label.lower()} label")
    return ParsedOutput(label == "unsafe", verdict.categories + verdict.unknown_categories)


def user_turn(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def as_user_turn(rendered: Rendered) -> str | None:
    """The text of a prompt rendered as one user turn; None for any other shape."""
    if isinstance(rendered, list) and len(rendered) == 1 and rendered[0]["role"] == "user":
        return rendered[0]["content"]
    return None


Renderer = Callable[["Taxonomy | None", str, str | None], Rendered]
Parser = Callable[[str, Task, "CategoryIndex | None"], ParsedOutput]
VerdictReader = Callable[[str, "CategoryIndex | None", bool], GuardVerdict]
LabelWord = Callable[[Task], tuple[re.Pattern, str, str]]


@dataclass(frozen=True)
class GuardFormat:
    """How a guard is asked and how its answer is read.

    ``render(taxonomy, user, response)`` gives the prompt (None: a format only read from files,
    such as GuardReasoner's outputs); with ``chat`` a string is one user turn, else raw text for
    a text completion. ``parse(raw, task, index)`` reads an answer for one task. ``label_word``
    finds the label word in an answer (first-token scores); ``openings`` are the answer's opening
    without and with a response (one-pass scoring); ``schema`` the answer's JSON schema for servers
    with structured output; ``verdict(raw, index, judges_response)`` reads both labels at once, for
    jurors (the formats jurors may use have one). ``parses_files``: offered as a parser of
    prediction files (formats that answer like another one leave it to that one)."""

    name: str
    label: str
    tasks: tuple[Task, ...]
    parse: Parser
    render: Renderer | None = None
    chat: bool = True
    max_tokens: int = 64
    uses_taxonomy: bool = False
    label_word: LabelWord | None = None
    schema: dict | None = None
    openings: tuple[AnswerOpening, AnswerOpening] | None = None
    verdict: VerdictReader | None = None
    parses_files: bool = True

    @property
    def asked(self) -> bool:
        """Whether a guard can be asked in this format (else its outputs are only read)."""
        return self.render is not None

    @property
    def for_jurors(self) -> bool:
        return self.verdict is not None

    def opening(self, with_response: bool) -> AnswerOpening | None:
        """The answer's opening for one-pass scoring; None when the answer is not read that way.
        The task's label is the last one."""
        if self.openings is None:
            return None
        return self.openings[1] if with_response else self.openings[0]
