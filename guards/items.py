"""What a guard is asked and what it answers: the task, the conversation it judges (no gold
label: benchmarks pair conversations with gold labels outside guards) and its prediction."""

from dataclasses import dataclass

from django.db import models


class Task(models.TextChoices):
    PROMPT_HARM = "prompt_harm", "Prompt harmfulness"
    RESPONSE_HARM = "response_harm", "Response harmfulness"
    REFUSAL = "refusal", "Response refusal"

    @property
    def positive_class(self) -> str:
        return "refusal" if self == Task.REFUSAL else "harmful"


HARM_TASKS = (Task.PROMPT_HARM, Task.RESPONSE_HARM)


@dataclass(frozen=True)
class Conversation:
    """One exchange a guard judges: a user prompt and, where there is one, the model's response."""

    uid: str
    prompt: str
    response: str | None


@dataclass(frozen=True)
class Prediction:
    """A guard's answer on one conversation for one task: ``label`` True for the task's positive
    class (harmful, or refusal), None when the answer could not be read or the request failed
    (``error`` says which); ``score`` the probability of the positive class where the guard gives
    one; ``categories`` the codes the guard named."""

    uid: str
    label: bool | None
    score: float | None = None
    categories: tuple[str, ...] = ()
    error: str | None = None
