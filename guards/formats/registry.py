"""The one registry of guard formats: the jury's format choices, the guard registry's format
field, the runners and the prediction-file parsers all read it. A new format is a module of
this package with a ``GuardFormat`` and its line in ``FORMATS``."""

from guards.items import Task

from . import guardreasoner, judge, llama_guard, nemoguard, wildguard
from .base import GuardFormat, ParsedOutput

# The order of choice lists (the jury's first three are its migration's choices, in order).
FORMATS: dict[str, GuardFormat] = {
    f.name: f
    for f in (
        nemoguard.FORMAT,
        llama_guard.FORMAT,
        judge.FORMAT,
        llama_guard.NATIVE_FORMAT,
        wildguard.FORMAT,
        guardreasoner.FORMAT,
    )
}
# A guard that classifies the text itself, with no prompt (the MiniLM guard).
CLASSIFIER = "classifier"
CLASSIFIER_LABEL = "Classifier (reads the text itself, no prompt)"


def prompt_formats() -> dict[str, GuardFormat]:
    """The formats a guard can be asked in, by name."""
    return {name: f for name, f in FORMATS.items() if f.asked}


def parser_formats() -> dict[str, GuardFormat]:
    """The formats whose outputs a prediction file may hold, by name."""
    return {name: f for name, f in FORMATS.items() if f.parses_files}


def get_format(name: str) -> GuardFormat:
    """The prompt format a guard is asked in; ValueError naming the choices for any other name."""
    formats = prompt_formats()
    try:
        return formats[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}: choose one of {', '.join(formats)}") from None


def get_parser(name: str, task: Task) -> GuardFormat:
    """The format whose parser reads a prediction file's outputs, checked to answer the task
    (NemoGuard and Llama Guard give no refusals)."""
    formats = parser_formats()
    if name not in formats:
        raise ValueError(f"unknown parser {name!r}: choose one of {', '.join(formats)}")
    if task not in formats[name].tasks:
        raise ValueError(f"the {name} parser cannot answer the {task.label.lower()} task")
    return formats[name]


def parse_output(name: str, raw: str, task: Task) -> ParsedOutput:
    """A prediction file's output read by the named parser, categories as written."""
    return get_parser(name, task).parse(raw, task, None)


def juror_format_choices() -> list[tuple[str, str]]:
    """The formats a juror may use: one user turn with the taxonomy, both labels in one answer."""
    return [(name, f.label) for name, f in FORMATS.items() if f.for_jurors]


def guard_format_choices() -> list[tuple[str, str]]:
    """The formats a registered guard may have: every prompt format, and the plain classifier."""
    return [(name, f.label) for name, f in prompt_formats().items()] + [(CLASSIFIER, CLASSIFIER_LABEL)]
