"""Model backends behind one small interface. This module has the production path: any
OpenAI-compatible server (what ``vllm serve`` exposes), with concurrency, timeouts, retries with
back-off and structured output; the in-process vLLM engine (GPU workers, the ``gpu`` extra); and
transformers for small models on a CPU. Neither torch nor vllm is imported until a model loads."""

import hashlib
import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class BackendError(Exception):
    """A request that failed for good (after retries): the juror abstains on that sample."""


class ServerUnreachable(BackendError):
    """A request that never got an answer from the model (connection refused, timeouts, 5xx/429
    after every retry): says nothing about the sample, only that the server is not serving."""


@dataclass(frozen=True)
class Completion:
    text: str
    seconds: float
    attempts: int


@dataclass
class OpenAICompatibleBackend:
    """Chat completions against ``{base_url}/chat/completions`` (``base_url`` ends in ``/v1``)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.5
    concurrency: int = 8

    def __post_init__(self) -> None:
        # Imported here: core.outbound reads Django's settings, and the in-process vLLM backend of this
        # module also runs in vLLM's own environment, which has no Django.
        from core.outbound import OutboundRefused, check_endpoint_url

        try:
            check_endpoint_url(self.base_url)
        except OutboundRefused as error:
            raise BackendError(str(error)) from None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self.client = httpx.Client(
            base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout, limits=limits
        )

    def close(self) -> None:
        self.client.close()

    def _body(self, prompt: str, max_tokens: int, json_schema: dict | None, choices: list[str] | None) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        # vLLM: response_format for a JSON schema, structured_outputs for a choice; never both.
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": json_schema}}
        elif choices:
            body["structured_outputs"] = {"choice": choices}
        return body

    def complete(
        self, prompt: str, *, max_tokens: int = 64, json_schema: dict | None = None, choices: list[str] | None = None
    ) -> Completion:
        """One prompt, greedy; retries connection errors, timeouts and 5xx/429 with back-off."""
        body = self._body(prompt, max_tokens, json_schema, choices)
        start = time.perf_counter()
        last_error, unreachable = "", True
        for attempt in range(1, self.retries + 2):
            try:
                response = self.client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                last_error = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as error:
                last_error = f"cannot reach {self.base_url}: {error}"
            else:
                if response.status_code == 200:
                    return Completion(self._text(response), time.perf_counter() - start, attempt)
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE_STATUS:
                    unreachable = False
                    break
            if attempt <= self.retries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        error_type = ServerUnreachable if unreachable else BackendError
        raise error_type(f"{self.model} at {self.base_url}: {last_error}")

    def _text(self, response: httpx.Response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model}: not a chat completion: {response.text[:200]}") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model}: the completion has no text")
        return content

    def complete_many(self, prompts: list[str], *, opening=None, **options: Any) -> list[Completion | BackendError]:
        """Many prompts at ``concurrency`` at once, in order; a failure stays with its prompt. A
        server writes the whole answer (``opening`` is for in-process one-pass scoring)."""

        def one(prompt: str) -> Completion | BackendError:
            try:
                return self.complete(prompt, **options)
            except BackendError as error:
                return error

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, prompts))


@dataclass
class TransformersBackend:
    """A small model run in this process with transformers, greedy, on CPU unless told otherwise.

    For small models and tests; large jurors belong on a vLLM server. Structured output is not
    available here: answers are parsed as they come, or their labels read in one forward pass
    when the caller gives the answer's opening. torch is imported on first use only."""

    model_path: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            self._model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32).to(self.device)
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
        """Greedy answers; with ``opening`` (a ``taxonomy.prompts.AnswerOpening``) the labels are
        read in one forward pass and only unsafe answers are generated on (``jury.one_pass``)."""
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
        from .one_pass import OnePassError, OnePassScorer

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

            self._llm = LLM(model=self.model, **self.engine_options)
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


Backend = OpenAICompatibleBackend | TransformersBackend | VLLMBackend
IN_PROCESS_BACKENDS = {"vllm", "transformers"}


def make_backend(kind: str, model: str, *, base_url: str = "", concurrency: int = 8) -> Backend:
    """The backend named by a juror's or generation job's settings (``openai``, ``vllm``, ``transformers``)."""
    if kind == "transformers":
        return TransformersBackend(model)
    if kind == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise BackendError("the in-process vLLM backend needs vllm (the gpu extra) on a GPU worker")
        return VLLMBackend(model)
    if kind != "openai":
        raise BackendError(f"unknown backend {kind!r}")
    if not base_url:
        raise BackendError("set the server's base URL (…/v1)")
    return OpenAICompatibleBackend(base_url, model, concurrency=concurrency)


def queue_for(kind: str) -> str:
    """Celery queue of work on this backend: in-process models on ``gpu``, HTTP on ``default``."""
    return "gpu" if kind in IN_PROCESS_BACKENDS else "default"
