"""The runner of a guard in the registry (``guards.runners``, from the guard's row)."""

from typing import Any

from guards.runners.base import GuardRunner
from guards.runners.factory import GuardSpec, runner_for_spec

from .models import GuardModel, TrainerKind


def guard_spec(guard: GuardModel) -> GuardSpec:
    """What the runners need of a registered guard."""
    classifier = guard.kind == TrainerKind.MINILM
    return GuardSpec(
        name=guard.name,
        classifier=classifier,
        base_model=guard.base_model,
        path=guard.path,
        prompt_format=guard.prompt_format,
        taxonomy=None if classifier else guard.taxonomy,
    )


def runner_for_guard(guard: GuardModel, **options: Any) -> GuardRunner:
    """The guard's runner; ``options`` as ``guards.runners.factory.runner_for_spec`` takes them."""
    return runner_for_spec(guard_spec(guard), **options)
