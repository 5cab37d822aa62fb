"""What both trainers share: settings read from a dict with clear errors, and a transformers
callback that reports progress (step, loss, ETA) and stops when the run is cancelled."""

import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any, TypeVar

from core.errors import ApplicationError

Settings = TypeVar("Settings")
# (step, total steps, latest loss or None, seconds left or None) -> True to stop (cancelled)
ProgressReporter = Callable[[int, int, float | None, float | None], bool]


class TrainingError(ApplicationError):
    """A training configuration or input that cannot run."""


def settings_from_dict(cls: type[Settings], data: dict[str, Any]) -> Settings:
    if not isinstance(data, dict):
        raise TrainingError(f'training settings: expected a JSON object such as {{"epochs": 1}}, got {data!r}')
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TrainingError(f"unknown training settings: {', '.join(unknown)} (known: {', '.join(known)})")
    values = {}
    for name, value in data.items():
        default = getattr(cls, name, None)
        expected = type(default) if default is not None else None
        if expected in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
            value = expected(value)
        elif expected is tuple and isinstance(value, list | str):
            value = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
        elif expected is not None and not isinstance(value, expected):
            raise TrainingError(f"training setting {name}: expected {expected.__name__}, got {value!r}")
        values[name] = value
    return cls(**values)


def settings_as_dict(settings: Any) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}


def progress_callback(report: ProgressReporter):
    """A transformers TrainerCallback that calls ``report`` after every step."""
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Reports at the end of each step and again when that step's loss is logged (the Trainer
        logs after the step ends). The ETA extrapolates the time per step since the first step of
        this process began (a resumed run counts from its checkpoint)."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.first_step: int | None = None
            self.loss: float | None = None
            self.eta: float | None = None

        def _report(self, state, control):
            if report(state.global_step, state.max_steps, self.loss, self.eta):
                control.should_training_stop = True
                control.should_save = True
            return control

        def on_step_begin(self, args, state, control, **kwargs):
            if self.first_step is None:
                self.first_step, self.started = state.global_step, time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            done = state.global_step - self.first_step
            left = state.max_steps - state.global_step
            self.eta = (time.monotonic() - self.started) / done * left if done else None
            return self._report(state, control)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])
                return self._report(state, control)
            return control

    return ReportProgress()


def latest_checkpoint(folder) -> str | None:
    """The newest complete ``checkpoint-N`` folder of a run, to resume after a crash. The Trainer
    writes ``trainer_state.json`` last: a folder without a readable one was cut short by the crash
    and is removed."""
    import json
    import shutil
    from pathlib import Path

    checkpoints = sorted(Path(folder).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    while checkpoints:
        newest = checkpoints.pop()
        try:
            json.loads((newest / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.rmtree(newest, ignore_errors=True)
            continue
        return str(newest)
    return None
