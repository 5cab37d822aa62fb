"""Guards behind a model backend (``guards.backends``): any OpenAI-compatible server asked in a
guard format, and a juror's backend asked as a guard."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from guards.backends.base import BackendError
from guards.backends.openai_compatible import GuardEndpoint
from guards.backends.registry import Backend
from guards.formats.base import Rendered, as_user_turn
from guards.formats.registry import get_format
from guards.items import Conversation, Prediction, Task

from .base import UnsupportedTask, category_index, check_task, prediction, prompt_taxonomy, render

if TYPE_CHECKING:
    from taxonomy.models import Taxonomy


class BackendRunner:
    """A guard behind one of the model backends: prompts rendered in ``prompt_format`` with
    ``taxonomy``, asked with ``complete_many`` (greedy), answers parsed. A failed request leaves
    the item unparsed with the request's error. The jury's backends take one user turn; formats
    sent as several messages or raw text need a ``GuardEndpoint``. With ``one_pass`` the
    transformers backend reads the labels in one forward pass (servers generate)."""

    def __init__(
        self,
        backend: Backend | GuardEndpoint,
        *,
        name: str,
        prompt_format: str = "nemoguard",
        taxonomy: "Taxonomy | None" = None,
        max_tokens: int | None = None,
        structured_output: bool = False,
        queue: str = "default",
        one_pass: bool = True,
    ):
        self.backend, self.name, self.queue, self.one_pass = backend, name, queue, one_pass
        self.format = get_format(prompt_format)
        self.taxonomy = prompt_taxonomy(self.format, taxonomy)
        self.max_tokens = max_tokens or self.format.max_tokens
        self.schema = self.format.schema if structured_output else None
        self.tasks = self.format.tasks
        self.threshold = None

    def _prompt(self, rendered: Rendered):
        if isinstance(self.backend, GuardEndpoint):
            return rendered
        text = as_user_turn(rendered)
        if text is None:
            raise UnsupportedTask(
                f"{self.name}: the {self.format.name} format needs an OpenAI-compatible guard endpoint"
            )
        return text

    def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]:
        task = check_task(self.name, self.tasks, task)
        if not items:
            return []
        prompts = [self._prompt(render(self.format, self.taxonomy, item, task)) for item in items]
        options: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.one_pass:  # the transformers backend reads the labels in one pass; servers generate
            options["opening"] = self.format.opening(task == Task.RESPONSE_HARM)
        if self.schema is not None:
            options["json_schema"] = self.schema
        results = self.backend.complete_many(prompts, **options)
        index = category_index(self.taxonomy)
        predictions = []
        for item, result in zip(items, results):
            if isinstance(result, BackendError):
                predictions.append(Prediction(item.uid, None, error=f"request failed: {result}"))
            else:
                predictions.append(prediction(item, self.format.parse(result.text, task, index)))
        return predictions

    def close(self) -> None:
        self.backend.close()


class EndpointRunner(BackendRunner):
    """Any OpenAI-compatible server (``vllm serve``, including ``--enable-lora`` adapters served by
    name) asked in a guard prompt format: the published guards by format — NemoGuard (``nemoguard``),
    Llama Guard (``llama_guard_native``, or our ``llama_guard`` prompt for guards trained on it),
    WildGuard (``wildguard``, text completions) — and guards we trained."""

    def __init__(
        self,
        base_url: str,
        model: str,
        prompt_format: str = "nemoguard",
        *,
        taxonomy: "Taxonomy | None" = None,
        name: str | None = None,
        max_tokens: int | None = None,
        concurrency: int = 8,
        structured_output: bool = False,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        guard_format = get_format(prompt_format)
        backend = GuardEndpoint(
            base_url, model, api_key=api_key, timeout=timeout, retries=retries, backoff=backoff,
            concurrency=concurrency, text_completion=not guard_format.chat,
        )  # fmt: skip
        super().__init__(
            backend,
            name=name or model,
            prompt_format=prompt_format,
            taxonomy=taxonomy,
            max_tokens=max_tokens,
            structured_output=structured_output,
        )
