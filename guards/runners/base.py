"""The one interface of guard runners, and what the runners share.

    class GuardRunner(Protocol):
        name: str
        def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]: ...

``predict`` answers one prediction per item, in the items' order: ``label`` True for the task's
positive class (harmful, or refusal), None when the guard's answer could not be read or its
request failed (``error`` says which); ``score`` the probability of the positive class where
the guard gives one (the MiniLM classifier; the first label token of an in-process LoRA guard);
``categories`` the codes the guard named (in ``runner.taxonomy`` where it has one). A runner that
cannot answer a task raises ``UnsupportedTask`` before any work.

Runners that render a prompt take a taxonomy (any ``Taxonomy`` row, a custom one included): its
categories are the policy written into the prompt, so categories can be defined at inference
time. Prompt formats come from ``guards.formats.registry``. Nothing here imports torch or vllm
until a model loads.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from guards.formats.base import GuardFormat, ParsedOutput, Rendered
from guards.items import Conversation, Prediction, Task

if TYPE_CHECKING:
    from taxonomy.models import Taxonomy
    from taxonomy.selectors import CategoryIndex


class UnsupportedTask(ValueError):
    """The runner's guard cannot answer this task (say, refusal detection by a harm classifier)."""


@runtime_checkable
class GuardRunner(Protocol):
    name: str

    def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]: ...


def check_task(runner_name: str, tasks: Sequence[Task], task: Task) -> Task:
    task = Task(task)
    if task not in tasks:
        answered = ", ".join(Task(t).label.lower() for t in tasks) or "no task"
        raise UnsupportedTask(f"{runner_name} cannot answer the {task.label.lower()} task (it answers {answered})")
    return task


def render(guard_format: GuardFormat, taxonomy: "Taxonomy | None", item: Conversation, task: Task) -> Rendered:
    """The item's prompt in the format: the response is shown unless the task judges the prompt."""
    response = item.response if task != Task.PROMPT_HARM else None
    return guard_format.render(taxonomy, item.prompt, response)


def as_taxonomy(value: "Taxonomy | int | str | None") -> "Taxonomy | None":
    """A taxonomy given as a row, an id or a slug (its newest version); None stays None."""
    if value is None or value == "":
        return None
    from taxonomy.models import Taxonomy
    from taxonomy.selectors import get_taxonomy

    if isinstance(value, Taxonomy):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return Taxonomy.objects.get(pk=int(value))
    return get_taxonomy(str(value))


def prompt_taxonomy(guard_format: GuardFormat, taxonomy: "Taxonomy | int | str | None") -> "Taxonomy | None":
    """The taxonomy a runner renders and parses with (the default one for formats that write a
    policy), its categories loaded once for the runner's life (rendering and parsing then need no
    query per item)."""
    from django.db.models import prefetch_related_objects

    from taxonomy.selectors import default_taxonomy

    resolved = as_taxonomy(taxonomy)
    if resolved is None and guard_format.uses_taxonomy:
        resolved = default_taxonomy()
    if resolved is not None:
        prefetch_related_objects([resolved], "categories")
    return resolved


def category_index(taxonomy: "Taxonomy | None") -> "CategoryIndex | None":
    from taxonomy.selectors import CategoryIndex

    return CategoryIndex.for_taxonomy(taxonomy) if taxonomy is not None else None


def prediction(item: Conversation, parsed: ParsedOutput, score: float | None = None) -> Prediction:
    return Prediction(item.uid, parsed.label, score, tuple(parsed.categories), parsed.error)


def close_runner(runner: GuardRunner) -> None:
    """Frees what the runner holds (models, HTTP connections), where it holds anything."""
    close = getattr(runner, "close", None)
    if callable(close):
        close()
