"""Writes of the jury: verdicts (idempotent) and jury decisions as final labels, which never
overwrite human labels; undecided samples go to the human review queue."""

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from annotation.labels import FINAL_LABEL_SOURCES, LabelSource
from annotation.models import FinalLabel, JobStatus, Project, ReviewItem, Sample
from annotation.permissions import require_admin
from annotation.services.adjudication import open_review
from taxonomy.prompts import (
    NEMOGUARD_ANSWER_SCHEMA,
    GuardVerdict,
    parse_llama_guard_output,
    parse_nemoguard_output,
    render_llama_guard_prompt,
    render_nemoguard_prompt,
)
from taxonomy.selectors import CategoryIndex

from .aggregation import JuryDecision, aggregate
from .backends import BackendError, OpenAICompatibleBackend, TransformersBackend
from .models import JudgedPart, Juror, JurorBackend, JuryJob, JuryVerdict, PromptFormat


class JuryError(ValueError):
    """A jury set-up that cannot run (no jurors, a backend without its server)."""


def record_verdict(sample: Sample, juror: Juror, part: str, verdict: GuardVerdict) -> JuryVerdict:
    """Stores a juror's parsed answer; an unparseable one is an abstention that keeps the raw text."""
    label = verdict.prompt_label if part == JudgedPart.PROMPT else verdict.response_label
    stored, _ = JuryVerdict.objects.update_or_create(
        sample=sample,
        juror=juror,
        part=JudgedPart(part),
        defaults={
            "label": label,
            "categories": list(verdict.categories) if label == "unsafe" else [],
            "raw": verdict.raw,
            "error": verdict.error or ("" if label else "no rating for this part"),
        },
    )
    return stored


def decide(sample: Sample, part: str, *, min_category_votes: int = 2) -> JuryDecision:
    jurors = Juror.objects.filter(project=sample.project, active=True)
    relevant = jurors.filter(judges_prompts=True) if part == JudgedPart.PROMPT else jurors.filter(judges_responses=True)
    verdicts = {v.juror_id: v for v in JuryVerdict.objects.filter(sample=sample, part=part, juror__in=relevant)}
    answers = [
        (verdicts[j].label, verdicts[j].categories) if j in verdicts else (None, [])
        for j in relevant.values_list("pk", flat=True)
    ]
    return aggregate(answers, jurors=len(answers), min_category_votes=min_category_votes)


@transaction.atomic
def apply_jury_decision(sample: Sample, part: str, decision: JuryDecision) -> FinalLabel | ReviewItem | None:
    """Writes the jury's label (provenance llm_jury) unless humans already decided that part."""
    final = FinalLabel.objects.select_for_update().filter(sample=sample).first()
    source = None
    if final is not None:
        source = final.prompt_label_source if part == JudgedPart.PROMPT else final.response_label_source
    if source in FINAL_LABEL_SOURCES:
        return None
    if decision.label is None:
        return open_review(sample, f"jury undecided on the {part}: {decision.reason}")
    if final is None:
        final = FinalLabel(sample=sample)
    if part == JudgedPart.PROMPT:
        final.prompt_label, final.prompt_label_source = decision.label, LabelSource.LLM_JURY
    else:
        final.response_label, final.response_label_source = decision.label, LabelSource.LLM_JURY
    final.categories = list(dict.fromkeys([*final.categories, *decision.categories]))
    final.import_batch = None
    final.save()
    return final


JOB_BATCH = 32


def backend_for(juror: Juror) -> OpenAICompatibleBackend | TransformersBackend:
    if juror.backend == JurorBackend.TRANSFORMERS:
        return TransformersBackend(juror.model)
    if juror.backend != JurorBackend.OPENAI:
        raise JuryError(f"juror {juror.name}: the {juror.get_backend_display()} backend is not available yet")
    if not juror.base_url:
        raise JuryError(f"juror {juror.name}: set the server's base URL (…/v1)")
    return OpenAICompatibleBackend(juror.base_url, juror.model, concurrency=juror.concurrency)


def render_for(juror: Juror, sample: Sample, part: str) -> str:
    response = sample.response if part == JudgedPart.RESPONSE else None
    render = render_nemoguard_prompt if juror.prompt_format == PromptFormat.NEMOGUARD else render_llama_guard_prompt
    return render(sample.project.taxonomy, sample.prompt, response)


def parse_for(juror: Juror, raw: str, part: str, index: CategoryIndex) -> GuardVerdict:
    if juror.prompt_format == PromptFormat.NEMOGUARD:
        return parse_nemoguard_output(raw, index)
    return parse_llama_guard_output(raw, index, judges_response=part == JudgedPart.RESPONSE)


def request_options(juror: Juror) -> dict:
    options: dict = {"max_tokens": juror.max_tokens}
    if juror.structured_output and juror.prompt_format == PromptFormat.NEMOGUARD:
        options["json_schema"] = NEMOGUARD_ANSWER_SCHEMA
    return options


AEGIS2_JURY = [
    ("mixtral-8x22b", "mistralai/Mixtral-8x22B-Instruct-v0.1"),
    ("mistral-nemo-12b", "mistralai/Mistral-Nemo-Instruct-2407"),
    ("gemma-2-27b", "google/gemma-2-27b-it"),
]


@transaction.atomic
def add_aegis2_jury(
    project: Project, *, by, base_urls: list[str], served_names: list[str] | None = None
) -> list[Juror]:
    """The Aegis 2.0 trio (Mixtral-8x22B, Mistral-NeMo-12B, Gemma-2-27B) judging responses, one
    OpenAI-compatible server each (docker-compose.yml serves them as juror-1..3)."""
    require_admin(by, project)
    if len(base_urls) != len(AEGIS2_JURY):
        raise JuryError(f"give {len(AEGIS2_JURY)} server URLs, one per juror")
    names = served_names or [model for _, model in AEGIS2_JURY]
    jurors = []
    for (name, _), model, url in zip(AEGIS2_JURY, names, base_urls):
        juror, _ = Juror.objects.update_or_create(
            project=project, name=name, defaults={"model": model, "base_url": url, "backend": JurorBackend.OPENAI}
        )
        jurors.append(juror)
    return jurors


def start_jury_job(project: Project, *, by, part: str = JudgedPart.RESPONSE) -> JuryJob:
    require_admin(by, project)
    jurors = _jurors(project, part)
    if not jurors:
        raise JuryError(f"project {project.slug!r} has no active juror for the {part}")
    return JuryJob.objects.create(
        project=project, part=part, total=_pending_samples(project, part, jurors).count(), created_by=by
    )


def _jurors(project: Project, part: str) -> list[Juror]:
    jurors = Juror.objects.filter(project=project, active=True)
    jurors = jurors.filter(judges_prompts=True) if part == JudgedPart.PROMPT else jurors.filter(judges_responses=True)
    return list(jurors.order_by("pk"))


def _pending_samples(project: Project, part: str, jurors: list[Juror]):
    """Samples the jury still has to label: no human label for the part, not every juror heard."""
    samples = Sample.objects.filter(project=project)
    if part == JudgedPart.RESPONSE:
        samples = samples.filter(response__isnull=False).exclude(
            final_label__response_label_source__in=FINAL_LABEL_SOURCES
        )
    else:
        samples = samples.exclude(final_label__prompt_label_source__in=FINAL_LABEL_SOURCES)
    heard_by_all = (
        JuryVerdict.objects.filter(part=part, juror__in=jurors)
        .values("sample")
        .annotate(n=Count("juror", distinct=True))
        .filter(n=len(jurors))
        .values("sample")
    )
    return samples.exclude(pk__in=heard_by_all).order_by("pk")


def run_jury_job(job: JuryJob) -> JuryJob:
    """Labels the pending samples batch by batch; resumable (samples every juror has answered are
    skipped) and cancellable between batches. A juror's failed request is its abstention."""
    project = job.project
    jurors = _jurors(project, job.part)
    JuryJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    index = CategoryIndex.for_taxonomy(project.taxonomy)
    backends: dict[int, OpenAICompatibleBackend | TransformersBackend] = {}
    try:
        backends.update({juror.pk: backend_for(juror) for juror in jurors})
        while True:
            if JuryJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                JuryJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
                break
            batch = list(_pending_samples(project, job.part, jurors).select_related("project__taxonomy")[:JOB_BATCH])
            if not batch:
                JuryJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
                break
            decided = sent = 0
            for juror in jurors:
                prompts = [render_for(juror, sample, job.part) for sample in batch]
                results = backends[juror.pk].complete_many(prompts, **request_options(juror))
                for sample, result in zip(batch, results):
                    if isinstance(result, BackendError):
                        verdict = GuardVerdict(None, None, (), (), "", str(result))
                    else:
                        verdict = parse_for(juror, result.text, job.part, index)
                    record_verdict(sample, juror, job.part, verdict)
            for sample in batch:
                outcome = apply_jury_decision(sample, job.part, decide(sample, job.part))
                decided += isinstance(outcome, FinalLabel)
                sent += isinstance(outcome, ReviewItem)
            JuryJob.objects.filter(pk=job.pk).update(
                done=F("done") + len(batch), decided=F("decided") + decided, sent_to_humans=F("sent_to_humans") + sent
            )
    except JuryError as error:
        JuryJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=str(error), finished_at=timezone.now())
    finally:
        for backend in backends.values():
            backend.close()
    job.refresh_from_db()
    return job


def cancel_jury_job(job: JuryJob, *, by) -> None:
    require_admin(by, job.project)
    JuryJob.objects.filter(pk=job.pk).update(cancel_requested=True)
