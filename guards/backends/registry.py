"""The one registry of model backends: the jury's and generation jobs' backend choices, their
Celery queues and ``make_backend`` read it. A new backend is a module of this package with a
class answering ``complete_many`` and ``close``, and its line in ``BACKENDS``."""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import BackendError
from .openai_compatible import OpenAICompatibleBackend
from .transformers_local import TransformersBackend
from .vllm_engine import VLLMBackend

Backend = OpenAICompatibleBackend | TransformersBackend | VLLMBackend


@dataclass(frozen=True)
class BackendKind:
    """A backend as settings name it: its label, its Celery queue (in-process models on ``gpu``,
    HTTP on ``default``), how to make one (``make(model, base_url=…, concurrency=…)``), and the
    package it needs with what to say when it is missing."""

    name: str
    label: str
    queue: str
    make: Callable[..., Any]
    requires: tuple[str, str] | None = None

    @property
    def loads_the_model_here(self) -> bool:
        """In-process backends load the model's files on this server (a server with one is called)."""
        return self.queue == "gpu"


def _openai(model: str, *, base_url: str, concurrency: int) -> OpenAICompatibleBackend:
    if not base_url:
        raise BackendError("set the server's base URL (…/v1)")
    return OpenAICompatibleBackend(base_url, model, concurrency=concurrency)


BACKENDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("openai", "OpenAI-compatible server (vllm serve)", "default", _openai),
        BackendKind("vllm", "vLLM in-process (GPU worker)", "gpu", lambda model, **_: VLLMBackend(model),
                    ("vllm", "the in-process vLLM backend needs vllm (the gpu extra) on a GPU worker")),
        BackendKind("transformers", "transformers (CPU, small models)", "gpu",
                    lambda model, **_: TransformersBackend(model)),
    )
}  # fmt: skip


def backend_choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.label) for kind in BACKENDS.values()]


def make_backend(kind: str, model: str, *, base_url: str = "", concurrency: int = 8) -> Backend:
    """The backend named by a juror's or generation job's settings (``openai``, ``vllm``, ``transformers``)."""
    if kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}")
    backend = BACKENDS[kind]
    if backend.requires and importlib.util.find_spec(backend.requires[0]) is None:
        raise BackendError(backend.requires[1])
    return backend.make(model, base_url=base_url, concurrency=concurrency)


def queue_for(kind: str) -> str:
    """Celery queue of work on this backend: in-process models on ``gpu``, HTTP on ``default``."""
    return BACKENDS[kind].queue if kind in BACKENDS else "default"
