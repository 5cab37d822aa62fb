"""A juror asked as a guard (``guards.runners``): evaluation runs and ensembles use jurors too."""

from guards.backends.registry import make_backend, queue_for
from guards.runners.backend import BackendRunner
from guards.runners.base import GuardRunner
from taxonomy.models import Taxonomy

from .models import Juror


def runner_for_juror(juror: Juror, *, taxonomy: Taxonomy | None = None, name: str | None = None) -> GuardRunner:
    """A juror as a guard: its backend, model, prompt format, token budget and structured-output
    setting; the policy is its project's taxonomy unless ``taxonomy`` is given."""
    backend = make_backend(juror.backend, juror.model, base_url=juror.base_url, concurrency=juror.concurrency)
    return BackendRunner(
        backend,
        name=name or juror.name,
        prompt_format=juror.prompt_format,
        taxonomy=taxonomy or juror.project.taxonomy,
        max_tokens=juror.max_tokens,
        structured_output=juror.structured_output,
        queue=queue_for(juror.backend),
    )
