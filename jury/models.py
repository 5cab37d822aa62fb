"""Jurors (LLMs that label what humans did not) and their verdicts."""

from django.db import models

from annotation.models import Project, Sample
from core.models import Job
from guards.backends.registry import backend_choices
from guards.formats.registry import juror_format_choices

# The backends and the formats a juror may use come from the registries of guards/ (the fields
# name the registries' functions, so a new backend or format needs no migration here).
JurorBackend = models.TextChoices(
    "JurorBackend", [(value.upper(), (value, label)) for value, label in backend_choices()]
)


class JudgedPart(models.TextChoices):
    PROMPT = "prompt", "Prompt"
    RESPONSE = "response", "Response"


class Juror(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jurors")
    name = models.CharField(max_length=100)
    model = models.CharField(max_length=300, help_text="Hugging Face id, local path or served model name.")
    backend = models.CharField(max_length=20, choices=backend_choices, default="openai")
    base_url = models.CharField(max_length=300, blank=True, help_text="For OpenAI-compatible servers: …/v1")
    prompt_format = models.CharField(max_length=20, choices=juror_format_choices, default="nemoguard")
    max_tokens = models.PositiveIntegerField(default=64)
    concurrency = models.PositiveSmallIntegerField(default=8, help_text="Requests in flight at once.")
    structured_output = models.BooleanField(
        default=True, help_text="Ask the server to constrain the answer to the format's JSON schema (NemoGuard)."
    )
    judges_prompts = models.BooleanField(default=False)
    judges_responses = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="juror_project_name")]

    def __str__(self) -> str:
        return self.name


class JuryVerdict(models.Model):
    """One juror's answer on one part of one sample; re-running replaces it, never duplicates it."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="jury_verdicts")
    juror = models.ForeignKey(Juror, on_delete=models.CASCADE, related_name="verdicts")
    part = models.CharField(max_length=10, choices=JudgedPart.choices)
    label = models.CharField(max_length=10, null=True, blank=True, help_text="safe/unsafe; empty = abstained")
    categories = models.JSONField(default=list, blank=True)
    raw = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "juror", "part"], name="verdict_unique")]

    @property
    def abstained(self) -> bool:
        return self.label is None


class JuryJob(Job):
    """The jury labelling one part of a project's samples; progress is readable while it runs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jury_jobs")
    part = models.CharField(max_length=10, choices=JudgedPart.choices, default=JudgedPart.RESPONSE)
    decided = models.PositiveIntegerField(default=0)
    sent_to_humans = models.PositiveIntegerField(default=0)
    min_category_votes = models.PositiveSmallIntegerField(
        default=2, help_text="A category is kept when at least this many jurors name it."
    )

    task_name = "jury.run_job"

    def task_queue(self) -> str:
        from .services import jury_job_queue

        return jury_job_queue(self)


class GenerationKind(models.TextChoices):
    RESPONSE = "response", "Responses for prompt-only samples"
    REFUSAL = "refusal", "Refusals for unsafe prompts"


class GenerationJob(Job):
    """A model writing responses (attached to prompt-only samples) or refusals (new samples whose
    response is labelled safe with provenance ``refusal_data_augmentation``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generation_jobs")
    kind = models.CharField(max_length=10, choices=GenerationKind.choices)
    model = models.CharField(max_length=300, help_text="Hugging Face id, local path or served model name.")
    backend = models.CharField(max_length=20, choices=backend_choices, default="openai")
    base_url = models.CharField(max_length=300, blank=True, help_text="For OpenAI-compatible servers: …/v1")
    max_tokens = models.PositiveIntegerField(default=256)
    concurrency = models.PositiveSmallIntegerField(default=8)
    strategies = models.JSONField(default=list, blank=True, help_text="Refusal strategies, used in turn.")
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="At most this many samples.")
    failed = models.PositiveIntegerField(default=0)

    task_name = "jury.run_generation_job"

    def task_queue(self) -> str:
        from guards.backends.registry import queue_for

        return queue_for(self.backend)
