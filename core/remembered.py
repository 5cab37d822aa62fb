"""Answers kept for a few seconds per key in this process: for reads made on every request whose
answer changes rarely (whether a project has an ensemble, whether its queue is long)."""

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_every: "weakref.WeakSet[Remembered]" = weakref.WeakSet()


class Remembered(Generic[V]):
    """``get(key, compute)`` computes at most once per ``seconds`` per key; thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._answers: dict[Hashable, tuple[V, float]] = {}  # key → (answer, good until)
        self._lock = threading.Lock()
        _every.add(self)

    def get(self, key: Hashable, compute: Callable[[], V], *, now: float | None = None) -> V:
        """The answer for ``key`` computed at most ``seconds`` before ``now`` (the monotonic clock)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            known = self._answers.get(key)
        if known is not None and now < known[1]:
            return known[0]
        answer = compute()
        with self._lock:
            self._answers[key] = (answer, now + self.seconds)
        return answer

    def forget(self) -> None:
        with self._lock:
            self._answers.clear()


def forget_everything_remembered() -> None:
    """Empties every Remembered of this process (tests, whose rows come and go by rollback)."""
    for remembered in list(_every):
        remembered.forget()
