"""Projects, samples, annotations, final labels, imports and export snapshots."""

from django.conf import settings
from django.db import models

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
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportBatch(models.Model):
    """One import of one file into a project: its outcome, counts and error."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    adapter = models.CharField(max_length=40)
    source_name = models.CharField(max_length=120)
    filename = models.CharField(max_length=500)
    stored_path = models.CharField(max_length=1000, blank=True, help_text="Uploaded copy, if any.")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    rows_read = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0, help_text="Rows repeating an earlier row.")
    existing_count = models.PositiveIntegerField(default=0, help_text="Rows already in the project.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"


class Sample(models.Model):
    """A dialogue to label: ordered turns, plus the prompt and response that guards classify."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
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


class Annotation(models.Model):
    """One annotator's labels for one sample."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    prompt_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    response_label = models.CharField(max_length=20, choices=SafetyLabel.choices, null=True, blank=True)
    response_refusal = models.CharField(max_length=20, choices=RefusalLabel.choices, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text="Category codes, most important first.")
    other_risks = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "annotator"], name="annotation_sample_annotator")]


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
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="final_labels"
    )
    updated_at = models.DateTimeField(auto_now=True)


class ExportSnapshot(models.Model):
    """One export of a project: a folder of split files and a manifest under MEDIA_ROOT."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    formats = models.JSONField(default=list)
    split_ratios = models.JSONField(default=dict)
    split_seed = models.CharField(max_length=80, default="aegis")
    filters = models.JSONField(default=dict, blank=True)
    directory = models.CharField(max_length=500, blank=True, help_text="Relative to MEDIA_ROOT.")
    manifest = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
