"""Generation jobs: responses written for prompt-only samples (attached with provenance) and
refusals written for unsafe prompts with the three deflection strategies of Aegis 2.0 (new samples
whose response is labelled safe with provenance ``refusal_data_augmentation``).

The templates live in ``data/generation_templates.json``; a sample's text only ever appears inside
the conversation section, defused, never in an instruction."""

import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.functions import Concat

from annotation.importing.records import SampleRecord
from annotation.labels import LabelSource, SafetyLabel
from annotation.models import FinalLabel, Project, Sample
from annotation.permissions import require_admin
from core.errors import ApplicationError
from core.jobs import JobCancelled, JobRun, cancel_job
from guards.backends.base import BackendError, Completion
from guards.backends.registry import Backend, make_backend
from guards.formats.base import render_conversation

from .models import GenerationJob, GenerationKind
from .services import check_model_source

TEMPLATES = json.loads((Path(__file__).parent / "data" / "generation_templates.json").read_text())
REFUSAL_STRATEGIES: dict[str, dict[str, str]] = TEMPLATES["refusal_strategies"]
REFUSAL_UID_PREFIX = "refusal:"
GENERATION_BATCH = 32


class GenerationError(ApplicationError):
    """A generation job that cannot start (unknown strategy, a backend without its server)."""


def render_refusal_prompt(strategy: str, prompt: str) -> str:
    """The request for a refusal of ``prompt`` written with ``strategy``."""
    return TEMPLATES["refusal_prompt"].format(
        conversation=render_conversation(prompt), instruction=REFUSAL_STRATEGIES[strategy]["instruction"]
    )


def pending_for_generation(project: Project, kind: str) -> QuerySet[Sample]:
    """Responses: samples without a response. Refusals: samples whose final prompt label is unsafe
    (Needs Caution under the project's policy) and that have no refusal sample yet."""
    samples = Sample.objects.filter(project=project)
    if kind == GenerationKind.RESPONSE:
        return samples.filter(response__isnull=True).order_by("pk")
    unsafe = [SafetyLabel.UNSAFE] + ([SafetyLabel.NEEDS_CAUTION] if project.needs_caution_policy == "unsafe" else [])
    refused = Sample.objects.filter(project=OuterRef("project"), uid=Concat(Value(REFUSAL_UID_PREFIX), OuterRef("uid")))
    return (
        samples.filter(final_label__prompt_label__in=unsafe)
        .exclude(source_name=LabelSource.REFUSAL_DATA_AUGMENTATION)
        .filter(~Exists(refused))
        .select_related("final_label")
        .order_by("pk")
    )


def start_generation_job(
    project: Project,
    *,
    by,
    kind: str,
    model: str,
    backend: str = "openai",
    base_url: str = "",
    max_tokens: int = 256,
    concurrency: int = 8,
    strategies: list[str] | None = None,
    limit: int | None = None,
) -> GenerationJob:
    require_admin(by, project)
    check_model_source(by, backend, model)
    kind = GenerationKind(kind)
    strategies = list(strategies or (REFUSAL_STRATEGIES if kind == GenerationKind.REFUSAL else []))
    unknown = [name for name in strategies if name not in REFUSAL_STRATEGIES]
    if unknown:
        raise GenerationError(f"unknown refusal strategy {', '.join(unknown)}; known: {', '.join(REFUSAL_STRATEGIES)}")
    try:
        make_backend(backend, model, base_url=base_url, concurrency=concurrency).close()
    except BackendError as error:
        raise GenerationError(str(error)) from None
    total = pending_for_generation(project, kind).count()
    return GenerationJob.objects.create(
        project=project,
        kind=kind,
        model=model,
        backend=backend,
        base_url=base_url,
        max_tokens=max_tokens,
        concurrency=concurrency,
        strategies=strategies,
        limit=limit,
        total=min(total, limit) if limit is not None else total,
        created_by=by,
    )


def _request(job: GenerationJob, sample: Sample, position: int) -> str:
    if job.kind == GenerationKind.RESPONSE:
        return sample.prompt
    return render_refusal_prompt(_strategy(job, position), sample.prompt)


def _strategy(job: GenerationJob, position: int) -> str:
    return job.strategies[position % len(job.strategies)]


def _text(result: Completion | BackendError) -> tuple[str | None, str]:
    if isinstance(result, BackendError):
        return None, str(result)
    text = result.text.strip()
    return (text, "") if text else (None, "the model returned an empty text")


def _hash(sample: Sample, turns: list[dict], model: str) -> str:
    return SampleRecord(
        sample.source_id, turns, reconstruction_id=sample.reconstruction_id, response_model=model
    ).content_hash


def _attach_responses(job: GenerationJob, batch: list[Sample], texts: list[str | None]) -> int:
    """Writes each generated response onto its still response-less sample; returns how many."""
    by_pk = {s.pk: s for s in Sample.objects.select_for_update().filter(pk__in=[s.pk for s in batch], response=None)}
    changed = []
    for sample, text in zip(batch, texts):
        current = by_pk.get(sample.pk)
        if current is None or text is None:
            continue
        current.turns = [*current.turns, {"role": "assistant", "content": text}]
        current.response = text
        current.content_hash = _hash(current, current.turns, job.model)
        current.metadata = {**current.metadata, "response_generated_by": {"model": job.model, "job": job.pk}}
        changed.append(current)
    taken = set(
        Sample.objects.filter(project=job.project, content_hash__in=[s.content_hash for s in changed]).values_list(
            "content_hash", flat=True
        )
    )
    changed = [s for s in changed if s.content_hash not in taken]
    Sample.objects.bulk_update(changed, ["turns", "response", "content_hash", "metadata"])
    return len(changed)


def _add_refusals(job: GenerationJob, batch: list[Sample], texts: list[str | None], first: int) -> int:
    """New samples: the unsafe prompt with a refusal, labelled safe (refusal_data_augmentation)."""
    refusals, labels = [], []
    for position, (parent, text) in enumerate(zip(batch, texts), start=first):
        if text is None:
            continue
        turns = [*parent.turns[: _last_user_turn(parent.turns) + 1], {"role": "assistant", "content": text}]
        strategy = _strategy(job, position)
        refusals.append(
            Sample(
                project=job.project,
                uid=f"{REFUSAL_UID_PREFIX}{parent.uid}",
                turns=turns,
                prompt=parent.prompt,
                response=text,
                source_name=LabelSource.REFUSAL_DATA_AUGMENTATION,
                source_id=parent.uid,
                reconstruction_id=parent.reconstruction_id,
                content_hash=_hash(parent, turns, job.model),
                metadata={"refusal_of": parent.uid, "strategy": strategy, "model": job.model, "job": job.pk},
            )
        )
        final = parent.final_label
        labels.append(
            FinalLabel(
                prompt_label=final.prompt_label,
                prompt_label_source=final.prompt_label_source,
                response_label=SafetyLabel.SAFE,
                response_label_source=LabelSource.REFUSAL_DATA_AUGMENTATION,
                categories=final.categories,
            )
        )
    Sample.objects.bulk_create(refusals)
    for sample, label in zip(refusals, labels):
        label.sample = sample
    FinalLabel.objects.bulk_create(labels)
    return len(refusals)


def _last_user_turn(turns: list[dict]) -> int:
    return max(i for i, turn in enumerate(turns) if turn["role"] == "user")


@transaction.atomic
def store_generation_batch(
    job: GenerationJob, batch: list[Sample], results: list[Completion | BackendError], first: int
) -> None:
    """One batch's texts and the job's progress, in one transaction; a failed text is counted."""
    texts, errors = zip(*(_text(result) for result in results))
    if job.kind == GenerationKind.RESPONSE:
        written = _attach_responses(job, batch, list(texts))
    else:
        written = _add_refusals(job, batch, list(texts), first)
    last_error = next((error for error in reversed(errors) if error), "")
    updates = {"done": F("done") + written, "failed": F("failed") + len(batch) - written}
    if last_error:
        updates["error"] = last_error[:2000]
    GenerationJob.objects.filter(pk=job.pk).update(**updates)


def _finish(run: JobRun, cancelled: bool) -> None:
    """Cancelled, succeeded, or failed when every text failed (say, the server is down)."""
    job = run.job
    job.refresh_from_db(fields=["done", "failed", "error"])
    if cancelled:
        raise JobCancelled
    if job.failed and not job.done:
        run.fail(job.error or "every text failed")


def run_generation_job(job: GenerationJob) -> GenerationJob:
    """Generates batch by batch, asking for the next batch while storing the last; resumable
    (what is written drops out of the pending set) and cancellable between batches."""
    pending = pending_for_generation(job.project, job.kind)
    backend: Backend | None = None
    try:
        with JobRun(job, swallow=(BackendError,), plain=(BackendError,)) as run:
            if not run.claimed:
                return job
            backend = make_backend(job.backend, job.model, base_url=job.base_url, concurrency=job.concurrency)
            with ThreadPoolExecutor(max_workers=1) as pool:
                asked: tuple[list[Sample], Future, int] | None = None
                after, position = 0, job.done + job.failed
                remaining = job.limit - job.done if job.limit is not None else None
                batch_size = max(GENERATION_BATCH, job.concurrency)
                while True:
                    cancelled = run.cancel_requested()
                    size = batch_size if remaining is None else min(batch_size, remaining)
                    batch = [] if cancelled or size <= 0 else list(pending.filter(pk__gt=after)[:size])
                    asking = None
                    if batch:
                        after = batch[-1].pk
                        prompts = [_request(job, sample, position + i) for i, sample in enumerate(batch)]
                        future = pool.submit(backend.complete_many, prompts, max_tokens=job.max_tokens)
                        asking = (batch, future, position)
                        position += len(batch)
                        remaining = None if remaining is None else remaining - len(batch)
                    if asked is not None:
                        store_generation_batch(job, asked[0], asked[1].result(), asked[2])
                    asked = asking
                    if asked is None:
                        _finish(run, cancelled)
                        break
    finally:
        if backend is not None:
            backend.close()
    job.refresh_from_db()
    return job


def cancel_generation_job(job: GenerationJob, *, by) -> None:
    require_admin(by, job.project)
    cancel_job(job)
