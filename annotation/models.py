"""Projects, samples, annotations, final labels, imports and export snapshots."""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.files import temporaries_of
from core.models import Job, JobStatus  # noqa: F401  (JobStatus: where the apps have always found it)
from taxonomy.models import Taxonomy

from .labels import LabelSource, NeedsCautionPolicy, RefusalLabel, SafetyLabel


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.PROTECT, related_name="projects")
    guidelines = models.TextField(blank=True)
    annotations_per_sample = models.PositiveSmallIntegerField(default=3)
    needs_caution_policy = models.CharField(
        max_length=10, choices=NeedsCautionPolicy.choices, default=NeedsCautionPolicy.UNSAFE
    )
    qa_per_hundred = models.PositiveSmallIntegerField(
        default=15, help_text="Of every 100 items an annotator completes, how many a reviewer re-labels."
    )
    review_below_agreement = models.FloatField(
        default=0.5,
        help_text="A finished sample goes to reviewers when no label has a majority or the share of "
        "annotators agreeing with the majority is below this.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportBatch(Job):
    """One import of one file into a project, all or nothing: its outcome, counts and error;
    ``done`` counts the rows read so far."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    adapter = models.CharField(max_length=40)
    source_name = models.CharField(max_length=120)
    filename = models.CharField(max_length=500)
    stored_path = models.CharField(max_length=1000, blank=True, help_text="Uploaded copy, if any.")
    rows_read = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0, help_text="Rows repeating an earlier row.")
    existing_count = models.PositiveIntegerField(default=0, help_text="Rows already in the project.")

    task_name = "annotation.import_batch"

    class Meta(Job.Meta):
        verbose_name_plural = "import batches"


class Sample(models.Model):
    """A dialogue to label: ordered turns, plus the prompt and response that guards classify."""

    # No index of its own: the unique (project, uid) index serves every lookup by project.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples", db_index=False)
    uid = models.CharField(max_length=255, help_text="Public id, unique in the project; the export's id.")
    turns = models.JSONField(help_text='[{"role": "user"|"assistant"|"system", "content": "..."}]')
    prompt = models.TextField()
    response = models.TextField(null=True, blank=True)
    source_name = models.CharField(max_length=120)
    source_id = models.CharField(max_length=255, blank=True)
    content_hash = models.CharField(max_length=64)
    reconstruction_id = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="samples"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="sample_project_content"),
            models.UniqueConstraint(fields=["project", "uid"], name="sample_project_uid"),
        ]
        indexes = [models.Index(fields=["project", "source_name"], name="sample_project_source")]

    def __str__(self) -> str:
        return self.uid


IMPORTED = Q(import_batch__isnull=False)  # a row an import wrote (its batch kept)


class Annotation(models.Model):
    """One annotator's labels for one sample."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    prompt_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    response_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    response_refusal = models.CharField(max_length=20, choices=RefusalLabel.choices, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text="Category codes, most important first.")
    other_risks = models.TextField(blank=True)
    comment = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "annotator"], name="annotation_sample_annotator")]
        # Only imported labels are indexed by their batch: the annotators' own labels, written on
        # every submission, leave both indexes alone. The second answers the pull's "has the
        # sample imported labels?" by a lookup, where the planner used to read the whole table.
        indexes = [
            models.Index(fields=["import_batch"], name="annotation_import_batch", condition=IMPORTED),
            models.Index(fields=["sample"], name="annotation_imported_sample", condition=IMPORTED),
        ]


class FinalLabel(models.Model):
    """The labels a sample is exported with, and where each came from."""

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, primary_key=True, related_name="final_label")
    prompt_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    prompt_label_source = models.CharField(max_length=30, choices=LabelSource.choices, null=True, blank=True)
    response_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    response_label_source = models.CharField(max_length=30, choices=LabelSource.choices, null=True, blank=True)
    response_refusal = models.CharField(max_length=20, choices=RefusalLabel.choices, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text="Category codes, most annotated first.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="final_labels", db_index=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # A final label decided by the annotators' majority names neither: only the others are indexed.
        indexes = [
            models.Index(fields=["decided_by"], name="final_label_decided_by", condition=Q(decided_by__isnull=False)),
            models.Index(fields=["import_batch"], name="final_label_import_batch", condition=IMPORTED),
        ]


class ExportProfile(models.TextChoices):
    """What an export writes (README "Export profiles")."""

    DEFAULT = "default", "Default: labelled samples, JSONL/Parquet/CSV per split"
    RELEASE = "release", "Release: exactly the Aegis 2.0 release layout (JSON arrays, refusals apart)"
    RAW = "raw", "Raw: every sample, labelled or not, for other tools"


class ExportSnapshot(Job):
    """One export of a project: a folder of split files, a dataset card and a manifest under MEDIA_ROOT."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    profile = models.CharField(max_length=10, choices=ExportProfile.choices, default=ExportProfile.DEFAULT)
    formats = models.JSONField(default=list)
    split_ratios = models.JSONField(default=dict)
    split_seed = models.CharField(max_length=80, default="aegis")
    filters = models.JSONField(default=dict, blank=True)
    directory = models.CharField(max_length=500, blank=True, help_text="Relative to MEDIA_ROOT.")
    manifest = models.JSONField(null=True, blank=True)

    task_name = "annotation.export_snapshot"

    def leftover_paths(self) -> list[Path]:
        return temporaries_of(Path(self.directory)) if self.directory else []


class ProjectRole(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Project admin"


class Membership(models.Model):
    """A person's role in a project, with their wellbeing settings there."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ProjectRole.choices)
    opted_out_categories = models.JSONField(
        default=list, blank=True, help_text="Category codes this annotator is never given samples of."
    )
    daily_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Most items labelled per day.")
    break_reminder_minutes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user", "role"], name="membership_unique_role")]


class SampleCategory(models.Model):
    """A category a sample is known to touch (from its final label or any annotation)."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="known_categories", db_index=False)
    code = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "code"], name="sample_category_unique")]
        indexes = [models.Index(fields=["code", "sample"], name="sample_category_code")]


class AssignmentBatch(models.Model):
    """A batch of samples put in a project's queue; each goes to k distinct annotators."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    annotations_per_sample = models.PositiveSmallIntegerField()
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "assignment batches"

    def __str__(self) -> str:
        return self.name


class QueueItem(models.Model):
    batch = models.ForeignKey(AssignmentBatch, on_delete=models.CASCADE, related_name="items", db_index=False)
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="queue_items")
    priority = models.IntegerField(default=0)
    done = models.BooleanField(default=False, help_text="Has all the annotations it wants.")
    submitted_count = models.PositiveIntegerField(default=0, help_text="Assignments submitted on this item.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "sample"], name="queue_item_unique")]
        indexes = [models.Index(fields=["batch", "done", "-priority", "id"], name="queue_item_next")]


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"


class Assignment(models.Model):
    """One annotator's hold on one queue item: a lease until submitted or skipped."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    # The sample's project, copied when the lease is written (a sample never changes project), so
    # that an annotator's counts in a project read one index instead of joining the samples.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    status = models.CharField(max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.TextField(blank=True)
    flagged = models.BooleanField(default=False)
    flag_reason = models.TextField(blank=True)
    # Set (never cleared: an item's ``done`` only turns true) once the item has all its annotations,
    # by the submission that completes it. So an annotator's finished assignments on open items,
    # which every pull counts, are a small index (assignment_finished_open) instead of their whole
    # history; the count still checks each item, so a flag not yet set costs a lookup, not a wrong count.
    item_done = models.BooleanField(db_default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "annotator"], name="assignment_sample_annotator")]
        indexes = [
            models.Index(fields=["item", "status", "lease_expires_at"], name="assignment_item_status"),
            models.Index(
                fields=["annotator", "project", "status", "submitted_at"],
                include=["item"],
                name="assignment_annotator_project",
            ),
            models.Index(
                fields=["annotator", "project"],
                include=["item"],
                condition=models.Q(status__in=[AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED], item_done=False),
                name="assignment_finished_open",
            ),
        ]


class AnnotatorTally(models.Model):
    """An annotator's submissions in a project, in all and on the last day they submitted (local
    date): kept by each first submission, so that a pull reads them instead of counting the
    annotator's whole history (which grew with every item labelled)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    submitted = models.PositiveIntegerField(default=0)
    day = models.DateField(null=True)
    submitted_on_day = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "annotator"], name="annotator_tally_unique")]


class AnnotationRevision(models.Model):
    """Audit history: every creation and change of an annotation, with the values before and after."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField()

    class Meta:
        ordering = ["changed_at", "pk"]


class ReviewItem(models.Model):
    """A sample waiting for a reviewer: no majority, low agreement, or flagged by an annotator."""

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="review_item")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["resolved_at", "created_at"], name="review_item_open")]


class AgreementReport(Job):
    """A computed agreement report, reused while the project's labels stay as they were."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agreement_reports")
    labels_fingerprint = models.CharField(max_length=100)
    report = models.JSONField(null=True, blank=True)

    task_name = "annotation.agreement_report"


class QACheck(models.Model):
    """A reviewer's blind re-label of one annotator's completed item (quality-lead re-check)."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="qa_check")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    prompt_label = models.CharField(max_length=20, choices=SafetyLabel.choices)
    response_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True)
    agrees = models.BooleanField(help_text="Same prompt and response labels as the annotator.")
    created_at = models.DateTimeField(auto_now_add=True)
