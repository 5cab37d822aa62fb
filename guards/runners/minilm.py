"""The MiniLM CPU guard: one classifier per harm task, no prompt."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guards.items import HARM_TASKS, Conversation, Prediction, Task

from .base import UnsupportedTask, check_task


class MiniLMRunner:
    """The MiniLM CPU guard (trained by ``training.trainers.minilm``): ``guard_dir`` is its run
    folder, with a ``prompt_harm`` classifier (reads the prompt) and a ``response_harm`` one (reads
    prompt and response as a text pair); a task is answered when its classifier was trained.
    ``score`` is the classifier's probability of unsafe; the label is ``score >= threshold``."""

    queue = "default"
    taxonomy = None
    chunk_size = 512  # an evaluation asks this many items at once (sorted by length within them)

    def __init__(
        self,
        guard_dir: str | Path,
        *,
        name: str | None = None,
        threshold: float = 0.5,
        batch_size: int = 64,
        max_length: int = 128,
    ):
        self.guard_dir = Path(guard_dir)
        self.name = name or self.guard_dir.name
        self.threshold = threshold
        self.batch_size, self.max_length = batch_size, max_length
        self._classifiers: dict[str, Any] = {}

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(task for task in HARM_TASKS if (self.guard_dir / task.value / "adapter_config.json").is_file())

    def classifier(self, task: Task):
        """The task's classifier, loaded once, with its LoRA weights merged into the encoder for
        inference (the same scores, without the adapter's extra matrix products)."""
        if task.value not in self._classifiers:
            from guards.loading import MiniLMGuard

            guard = MiniLMGuard(self.guard_dir / task.value, batch_size=self.batch_size, max_length=self.max_length)
            if hasattr(guard.model, "merge_and_unload"):
                guard.model = guard.model.merge_and_unload().eval()
            self._classifiers[task.value] = guard
        return self._classifiers[task.value]

    def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]:
        if Task(task) == Task.REFUSAL:
            raise UnsupportedTask(
                f"{self.name} is a harmfulness classifier: it cannot answer the response refusal task"
            )
        task = check_task(f"{self.name} (no {Task(task).value} classifier in {self.guard_dir})", self.tasks, task)
        if not items:
            return []
        # shortest first, so that each batch pads to a similar length; answers go back in order
        order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + len(items[i].response or ""))
        texts = [items[i].prompt for i in order]
        pairs = [items[i].response or "" for i in order] if task == Task.RESPONSE_HARM else None
        scores = [0.0] * len(items)
        for position, score in zip(order, self.classifier(task).scores(texts, pairs)):
            scores[position] = score
        return [Prediction(item.uid, score >= self.threshold, score) for item, score in zip(items, scores)]

    def close(self) -> None:
        self._classifiers.clear()
