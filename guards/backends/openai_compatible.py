"""Any OpenAI-compatible server (what ``vllm serve`` exposes): chat completions with concurrency,
timeouts, retries with exponential back-off (tenacity) and structured output; for guards also
whole chat messages, or raw text prompts sent to ``/completions``."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from .base import BackendError, Completion, ServerUnreachable

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _NoAnswer(Exception):
    """One attempt that got no answer (refused, timed out, 5xx/429): worth another try."""


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

    path = "/chat/completions"

    def __post_init__(self) -> None:
        # Imported here: core.outbound reads Django's settings, and this package also loads in vLLM's
        # own environment (the in-process engine), which has no Django.
        from core.outbound import OutboundRefused, endpoint_client

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            self.client = endpoint_client(
                self.base_url, headers=headers, timeout=self.timeout, connections=self.concurrency
            )
        except OutboundRefused as error:
            raise BackendError(str(error)) from None
        self._refused = OutboundRefused

    def close(self) -> None:
        self.client.close()

    def _body(self, prompt: Any, max_tokens: int, json_schema: dict | None, choices: list[str] | None) -> dict:
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

    def _post(self, body: dict) -> httpx.Response:
        """One attempt; ``_NoAnswer`` when it is worth another."""
        try:
            response = self.client.post(self.path, json=body)
        except httpx.TimeoutException:
            raise _NoAnswer(f"timed out after {self.timeout:g} s") from None
        except httpx.TransportError as error:
            raise _NoAnswer(f"cannot reach {self.base_url}: {error}") from None
        except self._refused as error:  # the host resolved off the list when connecting: not retried
            raise BackendError(f"{self.model} at {self.base_url}: {error}") from None
        if response.status_code in RETRYABLE_STATUS:
            raise _NoAnswer(f"HTTP {response.status_code}: {response.text[:200]}")
        return response

    def complete(
        self, prompt: Any, *, max_tokens: int = 64, json_schema: dict | None = None, choices: list[str] | None = None
    ) -> Completion:
        """One prompt, greedy; retries connection errors, timeouts and 5xx/429 with back-off."""
        body = self._body(prompt, max_tokens, json_schema, choices)
        start = time.perf_counter()
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff),
            retry=retry_if_exception_type(_NoAnswer),
            reraise=True,
        )
        try:
            response = retrying(self._post, body)
        except _NoAnswer as error:
            raise ServerUnreachable(f"{self.model} at {self.base_url}: {error}") from None
        if response.status_code != 200:
            raise BackendError(f"{self.model} at {self.base_url}: HTTP {response.status_code}: {response.text[:200]}")
        attempts = retrying.statistics.get("attempt_number", 1)
        return Completion(self._text(response), time.perf_counter() - start, attempts)

    def _text(self, response: httpx.Response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model}: not a chat completion: {response.text[:200]}") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model}: the completion has no text")
        return content

    def complete_many(self, prompts: list, *, opening=None, **options: Any) -> list[Completion | BackendError]:
        """Many prompts at ``concurrency`` at once, in order; a failure stays with its prompt. A
        server writes the whole answer (``opening`` is for in-process one-pass scoring)."""

        def one(prompt: Any) -> Completion | BackendError:
            try:
                return self.complete(prompt, **options)
            except BackendError as error:
                return error

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, prompts))


@dataclass
class GuardEndpoint(OpenAICompatibleBackend):
    """The OpenAI-compatible backend for guards: a prompt may be a list of chat messages, sent as
    they are; with ``text_completion`` prompts are raw text sent to ``/completions`` (WildGuard's
    format)."""

    text_completion: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_completion:
            self.path = "/completions"

    def _body(self, prompt: Any, max_tokens: int, json_schema: dict | None, choices: list[str] | None) -> dict:
        if self.text_completion:
            return {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
        body = super()._body("", max_tokens, json_schema, choices)
        body["messages"] = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        return body

    def _text(self, response: httpx.Response) -> str:
        if not self.text_completion:
            return super()._text(response)
        try:
            content = response.json()["choices"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model}: not a text completion: {response.text[:200]}") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model}: the completion has no text")
        return content
