"""Asking an ensemble's experts about one exchange.

Each expert is a registered guard model or a juror, asked through the guard runners' one
interface (``guards.runners``: ``predict(conversations, task) -> [Prediction]``). A runner is made
once per process and kept (at most ``AEGIS_MODERATION_RUNNERS`` of them, least recently used
first out), so a guard's weights load on the first request of a process and never again; a
guard whose path, or a juror whose model settings, change gets a fresh runner. Calls into one
runner are serialised (tokenizers and HTTP clients are not all thread-safe); different experts
are asked at once, on a small thread pool.

An expert whose answer cannot be parsed, or that fails, abstains (vote None) and its error is
kept with the decision; ``moderation.online`` charges an abstainer the ensemble's own loss.
"""

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from guards.items import Conversation, Task
from guards.runners.base import close_runner
from jury.runners import runner_for_juror
from training.runners import runner_for_guard

from .models import Expert, ExpertTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertAnswer:
    """One expert's vote on one exchange: 1 unsafe, 0 safe, None abstained (with ``error``)."""

    vote: int | None
    score: float | None = None
    categories: tuple[str, ...] = ()
    error: str | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "vote": self.vote,
            "score": self.score,
            "categories": list(self.categories),
            "error": self.error,
            "ms": round(self.ms, 3),
        }


def task_for(expert: Expert, response: str | None) -> Task | None:
    """The task the expert answers for this exchange; None when it has nothing to judge."""
    if expert.task == ExpertTask.PROMPT or (expert.task == ExpertTask.AUTO and response is None):
        return Task.PROMPT_HARM
    if response is None:
        return None
    return Task.RESPONSE_HARM


def runner_key(expert: Expert) -> tuple:
    """What a cached runner depends on: a change in any of it loads a new one."""
    if expert.guard_id is not None:
        guard = expert.guard
        options = json.dumps(expert.options or {}, sort_keys=True, default=str)
        return ("guard", guard.pk, guard.kind, guard.base_model, guard.path, guard.prompt_format, options)
    juror = expert.juror
    return (
        "juror",
        juror.pk,
        juror.model,
        juror.backend,
        juror.base_url,
        juror.prompt_format,
        juror.max_tokens,
        juror.structured_output,
        juror.concurrency,
    )


def _make_runner(expert: Expert):
    if expert.guard_id is not None:
        return runner_for_guard(expert.guard, **(expert.options or {}))
    return runner_for_juror(expert.juror)


class _Runners:
    """Runners by key, least recently used first out; each with a lock for its calls."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, expert: Expert) -> tuple[Any, threading.Lock]:
        key = runner_key(expert)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per key, even when requests arrive together
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            entry = (_make_runner(expert), threading.Lock())
            evicted = []
            with self._lock:
                self._entries[key] = entry
                self._loading.pop(key, None)
                while len(self._entries) > max(1, settings.AEGIS_MODERATION_RUNNERS):
                    evicted.append(self._entries.popitem(last=False)[1])
            for old, old_lock in evicted:  # once no call is using it
                with old_lock:
                    _close(old)
            return entry

    def clear(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
        for runner, lock in entries:
            with lock:
                _close(runner)

    def __len__(self) -> int:
        return len(self._entries)


def _close(runner: Any) -> None:
    try:
        close_runner(runner)
    except Exception:  # a runner that fails to close must not fail the request that evicted it
        logger.exception("closing a moderation runner failed")


RUNNERS = _Runners()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def clear_runners() -> None:
    """Forgets every loaded runner (the next request loads them again, as after a restart)."""
    RUNNERS.clear()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="moderation-expert")
        return _POOL


def _ask(runner: Any, lock: threading.Lock, item: Conversation, task: Task) -> ExpertAnswer:
    started = time.perf_counter()
    try:
        with lock:
            (prediction,) = runner.predict([item], task)
    except Exception as error:
        logger.warning("moderation expert failed: %s: %s", type(error).__name__, error)
        return ExpertAnswer(None, error=f"{type(error).__name__}: {error}", ms=_ms(started))
    label = prediction.label
    vote = None if label is None else int(bool(label))
    error = prediction.error if vote is None else None
    if vote is None and not error:
        error = "no label"
    categories = tuple(prediction.categories or ()) if vote == 1 else ()
    return ExpertAnswer(vote, prediction.score, categories, error, _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def ask_experts(experts: Sequence[Expert], prompt: str, response: str | None) -> list[ExpertAnswer]:
    """Every expert's answer, in the experts' order. Runners are made here (on this thread, which
    may read the database); only their ``predict`` calls, which read none (a runner loads its
    taxonomy's categories when it is made), go to the pool."""
    calls: list[tuple[int, Any, threading.Lock, Conversation, Task]] = []
    answers: list[ExpertAnswer | None] = [None] * len(experts)
    for index, expert in enumerate(experts):
        task = task_for(expert, response)
        if task is None:
            answers[index] = ExpertAnswer(None, error="judges responses; the request has none")
            continue
        try:
            runner, lock = RUNNERS.get(expert)
        except Exception as error:
            logger.warning("moderation expert %s cannot load: %s", expert.name, error)
            answers[index] = ExpertAnswer(None, error=f"cannot load: {type(error).__name__}: {error}")
            continue
        judged = response if task == Task.RESPONSE_HARM else None
        calls.append((index, runner, lock, Conversation("request", prompt, judged), task))
    if len(calls) > 1 and settings.AEGIS_MODERATION_PARALLEL:
        futures = [(index, _pool().submit(_ask, runner, lock, item, task)) for index, runner, lock, item, task in calls]
        for index, future in futures:
            answers[index] = future.result()
    else:
        for index, runner, lock, item, task in calls:
            answers[index] = _ask(runner, lock, item, task)
    return [answer for answer in answers if answer is not None]
