"""The in-process vLLM engine (offline ``LLM.chat``) of a GPU worker (the ``gpu`` extra); vllm is
imported when the engine is made. Loads in vLLM's own environment too (no Django here)."""

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from ..loading import model_location
from .base import BackendError, Completion


@dataclass
class VLLMBackend:
    """The in-process vLLM engine (offline ``LLM.chat``), for a GPU worker: one engine per model
    per process, batched greedy decoding, structured output through vLLM's own parameters."""

    model: str
    engine_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._llm = None

    def _engine(self):
        """The engine, made on first use; ``engine_options`` go to ``vllm.LLM`` (max_model_len…)."""
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(model=model_location(self.model), **self.engine_options)
        return self._llm

    def _params(self, max_tokens: int, json_schema: dict | None, choices: list[str] | None):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if json_schema is not None:
            structured = StructuredOutputsParams(json=json_schema)
        elif choices:
            structured = StructuredOutputsParams(choice=choices)
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, structured_outputs=structured)

    def complete_many(
        self,
        prompts: list,
        *,
        max_tokens: int = 64,
        json_schema: dict | None = None,
        choices=None,
        opening=None,
        lora: tuple[str, str] | None = None,
        raw: bool = False,
    ) -> list[Completion | BackendError]:
        """Batched greedy answers, written whole (``opening`` is for the transformers backend). A
        prompt is one user turn or a list of chat messages; with ``raw`` a text completion.
        ``lora`` = (name, adapter folder): answered with that LoRA adapter (the engine made with
        ``enable_lora``), several adapters sharing one engine (multi-LoRA)."""
        start = time.perf_counter()
        try:
            engine, params = self._engine(), self._params(max_tokens, json_schema, choices)
            request = self._lora_request(lora)
            if raw:
                outputs = engine.generate(prompts, params, lora_request=request, use_tqdm=False)
            else:
                conversations = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in prompts]
                outputs = engine.chat(conversations, params, lora_request=request, use_tqdm=False)
        except (OSError, ValueError, RuntimeError) as error:
            return [BackendError(f"{self.model}: {error}") for _ in prompts]
        seconds = (time.perf_counter() - start) / max(len(prompts), 1)
        return [Completion(output.outputs[0].text, seconds, 1) for output in outputs]

    @staticmethod
    def _lora_request(lora: tuple[str, str] | None):
        if lora is None:
            return None
        from vllm.lora.request import LoRARequest

        name, path = lora
        # a stable id per adapter folder: vLLM keeps adapters by id
        return LoRARequest(name, int(hashlib.sha256(path.encode()).hexdigest()[:7], 16) + 1, path)

    def complete(self, prompt: str, **options: Any) -> Completion:
        result = self.complete_many([prompt], **options)[0]
        if isinstance(result, BackendError):
            raise result
        return result

    def close(self) -> None:
        self._llm = None
