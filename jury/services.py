"""Writes of the jury: verdicts (idempotent) and jury decisions as final labels, which never
overwrite human labels; undecided samples go to the human review queue."""

from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from annotation.labels import FINAL_LABEL_SOURCES, LabelSource
from annotation.models import FinalLabel, Project, ReviewItem, Sample
from annotation.permissions import require_admin
from annotation.services.adjudication import open_review
from core.errors import ApplicationError
from core.jobs import JobCancelled, JobRun, cancel_job
from core.outbound import check_server_path
from guards.backends.base import BackendError, Completion, ServerUnreachable
from guards.backends.registry import BACKENDS, Backend, make_backend, queue_for
from guards.formats.base import GuardVerdict, as_user_turn
from guards.formats.registry import get_format
from guards.loading import is_hub_id
from taxonomy.models import Taxonomy
from taxonomy.selectors import CategoryIndex

from .aggregation import JuryDecision, aggregate
from .models import JudgedPart, Juror, JurorBackend, JuryJob, JuryVerdict


class JuryError(ApplicationError):
    """A jury set-up that cannot run (no jurors, a backend without its server)."""


def check_model_source(by, backend: str, model: str) -> None:
    """A backend that loads the model on this server takes a Hugging Face id (read from the Hugging
    Face cache) from anyone, and a path on the server from staff only, inside
    AEGIS_SERVER_PATH_ROOTS (as training's base models); ``by`` None is the command line."""
    kind = BACKENDS.get(backend)
    if kind is not None and kind.loads_the_model_here and not is_hub_id(model):
        check_server_path(by, model, "load a model from a path on the server")


def record_verdict(sample: Sample, juror: Juror, part: str, verdict: GuardVerdict) -> JuryVerdict:
    """Stores a juror's parsed answer; an unparseable one is an abstention that keeps the raw text."""
    row = _verdict_row(sample, juror, part, verdict)
    stored, _ = JuryVerdict.objects.update_or_create(
        sample=sample, juror=juror, part=row.part, defaults={field: getattr(row, field) for field in VERDICT_FIELDS}
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
def apply_jury_decisions(
    samples: list[Sample], part: str, decisions: list[JuryDecision]
) -> list[FinalLabel | ReviewItem | None]:
    """Writes the jury's labels (provenance llm_jury) unless humans already decided that part;
    undecided samples go to the review queue. One query to read, one or two to write."""
    finals = {f.sample_id: f for f in FinalLabel.objects.select_for_update().filter(sample__in=samples)}
    outcomes: list[FinalLabel | ReviewItem | None] = []
    new, changed = [], []
    now = timezone.now()
    for sample, decision in zip(samples, decisions):
        final = finals.get(sample.pk)
        source = None
        if final is not None:
            source = final.prompt_label_source if part == JudgedPart.PROMPT else final.response_label_source
        if source in FINAL_LABEL_SOURCES:
            outcomes.append(None)
            continue
        if decision.label is None:
            outcomes.append(open_review(sample, f"jury undecided on the {part}: {decision.reason}"))
            continue
        if final is None:
            final = FinalLabel(sample=sample)
            new.append(final)
        else:
            changed.append(final)
        if part == JudgedPart.PROMPT:
            final.prompt_label, final.prompt_label_source = decision.label, LabelSource.LLM_JURY
        else:
            final.response_label, final.response_label_source = decision.label, LabelSource.LLM_JURY
        final.categories = list(dict.fromkeys([*final.categories, *decision.categories]))
        final.import_batch, final.updated_at = None, now
        outcomes.append(final)
    FinalLabel.objects.bulk_create(new)
    FinalLabel.objects.bulk_update(
        changed,
        ["prompt_label", "prompt_label_source", "response_label", "response_label_source", "categories",
         "import_batch", "updated_at"],
    )  # fmt: skip
    return outcomes


def apply_jury_decision(sample: Sample, part: str, decision: JuryDecision) -> FinalLabel | ReviewItem | None:
    return apply_jury_decisions([sample], part, [decision])[0]


JOB_BATCH = 32  # samples per batch at least; more when a juror keeps more requests in flight


def backend_for(juror: Juror) -> Backend:
    try:
        return make_backend(juror.backend, juror.model, base_url=juror.base_url, concurrency=juror.concurrency)
    except BackendError as error:
        raise JuryError(f"juror {juror.name}: {error}") from None


def render_for(juror: Juror, sample: Sample, part: str, taxonomy: Taxonomy | None = None) -> str:
    """The juror's prompt (one user turn, in its format) for a part of a sample."""
    response = sample.response if part == JudgedPart.RESPONSE else None
    guard_format = get_format(juror.prompt_format)
    return as_user_turn(guard_format.render(taxonomy or sample.project.taxonomy, sample.prompt, response))


def parse_for(juror: Juror, raw: str, part: str, index: CategoryIndex) -> GuardVerdict:
    return get_format(juror.prompt_format).verdict(raw, index, part == JudgedPart.RESPONSE)


def request_options(juror: Juror) -> dict:
    options: dict = {"max_tokens": juror.max_tokens}
    schema = get_format(juror.prompt_format).schema
    if juror.structured_output and schema is not None:
        options["json_schema"] = schema
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


def start_jury_job(project: Project, *, by, part: str = JudgedPart.RESPONSE, min_category_votes: int = 2) -> JuryJob:
    require_admin(by, project)
    jurors = _jurors(project, part)
    if not jurors:
        raise JuryError(f"project {project.slug!r} has no active juror for the {part}")
    return JuryJob.objects.create(
        project=project,
        part=part,
        total=_pending_samples(project, part, jurors).count(),
        min_category_votes=min_category_votes,
        created_by=by,
    )


def jury_job_queue(job: JuryJob) -> str:
    """``gpu`` when a juror of the job runs in process, else ``default``."""
    queues = {queue_for(juror.backend) for juror in _jurors(job.project, job.part)}
    return "gpu" if "gpu" in queues else "default"


def _jurors(project: Project, part: str) -> list[Juror]:
    jurors = Juror.objects.filter(project=project, active=True)
    jurors = jurors.filter(judges_prompts=True) if part == JudgedPart.PROMPT else jurors.filter(judges_responses=True)
    return list(jurors.order_by("pk"))


def _pending_samples(project: Project, part: str, jurors: list[Juror], after: int = 0):
    """Samples the jury still has to label: no human label for the part, not every juror heard;
    only those past ``after`` (a job walks the samples in id order, so each look is short)."""
    samples = Sample.objects.filter(project=project, pk__gt=after)
    if part == JudgedPart.RESPONSE:
        samples = samples.filter(response__isnull=False).exclude(
            final_label__response_label_source__in=FINAL_LABEL_SOURCES
        )
    else:
        samples = samples.exclude(final_label__prompt_label_source__in=FINAL_LABEL_SOURCES)
    heard_by_all = (
        JuryVerdict.objects.filter(part=part, juror__in=jurors, sample_id__gt=after)
        .values("sample")
        .annotate(n=Count("juror", distinct=True))
        .filter(n=len(jurors))
        .values("sample")
    )
    return samples.exclude(pk__in=heard_by_all).order_by("pk")


def _verdict_of(
    juror: Juror, result: Completion | BackendError, part: str, index: CategoryIndex
) -> GuardVerdict | None:
    """The juror's verdict; None when its server could not be reached (no verdict at all)."""
    if isinstance(result, ServerUnreachable):
        return None
    if isinstance(result, BackendError):
        return GuardVerdict(None, None, (), (), "", str(result))
    return parse_for(juror, result.text, part, index)


VERDICT_FIELDS = ["label", "categories", "raw", "error", "created_at"]


def _verdict_row(sample: Sample, juror: Juror, part: str, verdict: GuardVerdict) -> JuryVerdict:
    label = verdict.prompt_label if part == JudgedPart.PROMPT else verdict.response_label
    return JuryVerdict(
        sample=sample,
        juror=juror,
        part=part,
        label=label,
        categories=list(verdict.categories) if label == "unsafe" else [],
        raw=verdict.raw,
        error=verdict.error or ("" if label else "no rating for this part"),
        created_at=timezone.now(),
    )


@transaction.atomic
def store_jury_batch(
    job: JuryJob, batch: list[Sample], verdicts: dict[Juror, list[GuardVerdict | None]]
) -> list[Sample]:
    """One batch's verdicts (upserted: a re-run replaces, never duplicates), the jury's decisions
    and the job's progress, in one transaction; returns the samples left pending.

    ``None`` stands for a juror whose server could not be reached: nothing is stored for it (the
    sample stays pending for a later run), and a sample the others cannot decide without it is
    left pending too, never sent to human review for a fault of the server."""
    rows = [
        _verdict_row(s, juror, job.part, v)
        for juror, answers in verdicts.items()
        for s, v in zip(batch, answers)
        if v is not None
    ]
    JuryVerdict.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["sample", "juror", "part"], update_fields=VERDICT_FIELDS
    )
    by_sample: dict[int, list[tuple[str | None, list[str]]]] = {sample.pk: [] for sample in batch}
    for row in rows:
        by_sample[row.sample.pk].append((row.label, row.categories))
    judged, decisions, pending = [], [], []
    for sample in batch:
        answers = by_sample[sample.pk]
        unheard = len(verdicts) - len(answers)
        answers += [(None, [])] * unheard
        decision = aggregate(answers, jurors=len(answers), min_category_votes=job.min_category_votes)
        if decision.label is None and unheard:
            pending.append(sample)
        else:
            judged.append(sample)
            decisions.append(decision)
    outcomes = apply_jury_decisions(judged, job.part, decisions)
    decided = sum(isinstance(outcome, FinalLabel) for outcome in outcomes)
    sent = sum(isinstance(outcome, ReviewItem) for outcome in outcomes)
    JuryJob.objects.filter(pk=job.pk).update(
        done=F("done") + len(batch), decided=F("decided") + decided, sent_to_humans=F("sent_to_humans") + sent
    )
    return pending


class UnreachableJurors:
    """Counts, per juror, the requests in a row that found no server; the job stops at
    ``AEGIS_JURY_MAX_UNREACHABLE`` rather than run on deciding nothing."""

    def __init__(self) -> None:
        self.limit = settings.AEGIS_JURY_MAX_UNREACHABLE
        self.streaks: dict[str, int] = {}
        self.missed: dict[str, int] = {}
        self.last_error: dict[str, str] = {}
        self.pending = 0

    def count(self, juror: Juror, results: list[Completion | BackendError]) -> None:
        for result in results:
            if isinstance(result, ServerUnreachable):
                self.streaks[juror.name] = self.streaks.get(juror.name, 0) + 1
                self.missed[juror.name] = self.missed.get(juror.name, 0) + 1
                self.last_error[juror.name] = str(result)
            else:
                self.streaks[juror.name] = 0

    def stop_reason(self) -> str:
        """Why the job must stop now, or an empty string."""
        down = [name for name, streak in self.streaks.items() if streak >= self.limit]
        if not down:
            return ""
        details = "; ".join(f"{name}: {self.last_error[name]}" for name in down)
        return (
            f"stopped: {', '.join(down)} could not be reached {self.limit} times in a row ({details}). "
            f"{self.pending} samples were left pending (none sent to review for this); "
            "start the server or deactivate the juror, then run the job again"
        )

    def note(self) -> str:
        """What a finished job says when a server did not answer some requests."""
        if not self.missed:
            return ""
        missed = ", ".join(f"{name} on {n}" for name, n in sorted(self.missed.items()))
        return (
            f"{self.pending} samples left undecided and pending (none sent to review for this): could not reach "
            f"{missed} requests; run the job again when the servers answer"
        )


def run_jury_job(job: JuryJob) -> JuryJob:
    """Labels the pending samples batch by batch; resumable (samples every juror has answered are
    skipped) and cancellable between batches. A juror's failed request is its abstention, except
    when its server could not be reached: then the sample stays pending, and the job fails once a
    juror's server has been unreachable ``AEGIS_JURY_MAX_UNREACHABLE`` requests in a row.

    The jurors are asked at once, each at its own concurrency, and a batch's answers are stored
    while the next batch is being asked, so the database work hides behind the models' time."""
    project = job.project
    jurors = _jurors(project, job.part)
    index = CategoryIndex.for_taxonomy(project.taxonomy)
    backends: dict[int, Backend] = {}
    unreachable = UnreachableJurors()
    try:
        with JobRun(job, swallow=(JuryError,), plain=(JuryError,)) as run:
            if not run.claimed:
                return job
            backends.update({juror.pk: backend_for(juror) for juror in jurors})
            taxonomy = Taxonomy.objects.prefetch_related("categories").get(pk=project.taxonomy_id)
            batch_size = max(JOB_BATCH, *(juror.concurrency for juror in jurors))
            with ThreadPoolExecutor(max_workers=len(jurors)) as pool:
                asked: tuple[list[Sample], dict[Juror, Future]] | None = None
                after = 0
                while True:
                    cancelled = run.cancel_requested()
                    batch = [] if cancelled else list(_pending_samples(project, job.part, jurors, after)[:batch_size])
                    asking = None
                    if batch:
                        after = batch[-1].pk
                        asking = (
                            batch,
                            {
                                juror: pool.submit(_ask, backends[juror.pk], juror, batch, job.part, taxonomy)
                                for juror in jurors
                            },
                        )
                    if asked is not None:
                        previous, futures = asked
                        results = {juror: future.result() for juror, future in futures.items()}
                        for juror, answers in results.items():
                            unreachable.count(juror, answers)
                        verdicts = {j: [_verdict_of(j, r, job.part, index) for r in rs] for j, rs in results.items()}
                        unreachable.pending += len(store_jury_batch(job, previous, verdicts))
                        if unreachable.stop_reason():
                            if asking is not None:
                                for future in asking[1].values():
                                    future.cancel()
                            run.fail(unreachable.stop_reason())
                            break
                    asked = asking
                    if asked is None:
                        if cancelled:
                            raise JobCancelled
                        run.succeed(error=unreachable.note())
                        break
    finally:
        for backend in backends.values():
            backend.close()
    job.refresh_from_db()
    return job


def _ask(
    backend: Backend, juror: Juror, batch: list[Sample], part: str, taxonomy: Taxonomy
) -> list[Completion | BackendError]:
    """One juror's answers on a batch (in a pool thread: no database access here)."""
    prompts = [render_for(juror, sample, part, taxonomy) for sample in batch]
    options = request_options(juror)
    if settings.AEGIS_JURY_SCORING == "one_pass":  # read by the transformers backend; servers generate
        options["opening"] = get_format(juror.prompt_format).opening(part == JudgedPart.RESPONSE)
    return backend.complete_many(prompts, **options)


def cancel_jury_job(job: JuryJob, *, by) -> None:
    require_admin(by, job.project)
    cancel_job(job)
