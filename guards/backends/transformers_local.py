"""Small models run in this process with transformers (CPU unless told otherwise); torch is
imported on first use only."""

import time
from dataclasses import dataclass
from typing import Any

from ..loading import model_location
from .base import BackendError, Completion


@dataclass
class TransformersBackend:
    """A small model run in this process with transformers, greedy, on CPU unless told otherwise.

    For small models and tests; large jurors belong on a vLLM server. Structured output is not
    available here: answers are parsed as they come, or their labels read in one forward pass
    when the caller gives the answer's opening."""

    model_path: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            location = model_location(self.model_path)
            self._tokenizer = AutoTokenizer.from_pretrained(location)
            self._model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).to(self.device)
            self._model.eval()

    def complete(self, prompt: str, *, max_tokens: int = 64, **_: Any) -> Completion:
        import torch

        start = time.perf_counter()
        try:
            self._load()
            tokenizer = self._tokenizer
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(self.device)
            with torch.inference_mode():
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=max_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                )
        except (OSError, ValueError, RuntimeError) as error:
            raise BackendError(f"{self.model_path}: {error}") from error
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return Completion(text, time.perf_counter() - start, 1)

    def complete_many(
        self, prompts: list[str], *, opening=None, max_tokens: int = 64, **options: Any
    ) -> list[Completion | BackendError]:
        """Greedy answers; with ``opening`` (a ``guards.formats.base.AnswerOpening``) the labels are
        read in one forward pass and only unsafe answers are generated on (``guards.one_pass``)."""
        if opening is not None:
            return self._one_pass(prompts, opening, max_tokens)
        results: list[Completion | BackendError] = []
        for prompt in prompts:
            try:
                results.append(self.complete(prompt, max_tokens=max_tokens, **options))
            except BackendError as error:
                results.append(error)
        return results

    def _one_pass(self, prompts: list[str], opening, max_tokens: int) -> list[Completion | BackendError]:
        from guards.one_pass import OnePassError, OnePassScorer

        start = time.perf_counter()
        try:
            self._load()
            ids = [
                self._tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
                )["input_ids"]
                for prompt in prompts
            ]
            scorer = OnePassScorer(self._model, self._tokenizer, device=self.device)
            answers = scorer.score(ids, opening, max_new_tokens=max_tokens)
        except (OSError, ValueError, RuntimeError, OnePassError) as error:
            return [BackendError(f"{self.model_path}: {error}") for _ in prompts]
        seconds = (time.perf_counter() - start) / max(len(prompts), 1)
        return [Completion(answer.text, seconds, 1) for answer in answers]

    def close(self) -> None:
        self._model = self._tokenizer = None
