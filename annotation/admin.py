from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.jobs import start_job

from . import services
from .importing.adapters import ADAPTERS
from .labels import LabelError
from .models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentBatch,
    ExportProfile,
    ExportSnapshot,
    FinalLabel,
    ImportBatch,
    Membership,
    Project,
    ReviewItem,
    Sample,
)


class ImportForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .json, .csv or .parquet, optionally .gz")
    adapter = forms.ChoiceField(choices=[(name, f"{name}: {a.description}") for name, a in ADAPTERS.items()])
    source_name = forms.CharField(required=False, help_text="Defaults to the adapter's source name.")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ["user", "role", "opted_out_categories", "daily_cap", "break_reminder_minutes"]
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    inlines = [MembershipInline]
    list_display = ["name", "slug", "taxonomy", "annotations_per_sample", "needs_caution_policy", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["export_projects", "export_release", "export_raw"]
    change_form_template = "admin/annotation/project/change_form.html"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        fields = {
            f: form.cleaned_data[f]
            for f in ["name", "slug", "taxonomy", "guidelines", "annotations_per_sample", "needs_caution_policy"]
        }
        obj.pk = services.create_project(created_by=request.user, **fields).pk

    def get_urls(self):
        return [
            path(
                "<int:project_id>/import/",
                self.admin_site.admin_view(self.import_view),
                name="annotation_project_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            stored = services.store_upload(form.cleaned_data["file"])
            with transaction.atomic():
                batch = services.start_import_batch(
                    project,
                    adapter=form.cleaned_data["adapter"],
                    filename=stored.name,
                    stored_path=str(stored),
                    source_name=form.cleaned_data["source_name"] or None,
                    created_by=request.user,
                )
                start_job(batch)
            self.message_user(
                request, f"Import {batch.pk} of {stored.name} started; see Import batches.", messages.SUCCESS
            )
            return redirect(reverse("admin:annotation_importbatch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import samples into {project}",
            "form": form,
            "project": project,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/annotation/project/import.html", context)

    @admin.action(description="Export (Aegis 2.0 columns, JSONL + Parquet + CSV)")
    def export_projects(self, request, queryset, profile: str = ExportProfile.DEFAULT):
        for project in queryset:
            with transaction.atomic():
                snapshot = services.start_export(project, profile=profile, created_by=request.user)
                start_job(snapshot)
            self.message_user(request, f"Export {snapshot.pk} ({profile}) of {project} started.", messages.SUCCESS)

    @admin.action(description="Export in the Aegis 2.0 release layout (JSON arrays, refusals apart)")
    def export_release(self, request, queryset):
        self.export_projects(request, queryset, ExportProfile.RELEASE)

    @admin.action(description="Export raw (every sample, labelled or not; JSONL + Parquet + CSV)")
    def export_raw(self, request, queryset):
        self.export_projects(request, queryset, ExportProfile.RAW)


class FinalLabelInline(admin.StackedInline):
    model = FinalLabel
    extra = 0
    readonly_fields = ["decided_by", "import_batch", "updated_at"]


class AnnotationInline(admin.TabularInline):
    model = Annotation
    extra = 0
    fields = ["annotator", "prompt_label", "response_label", "response_refusal", "categories", "created_at"]
    readonly_fields = fields


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["uid", "project", "source_name", "short_prompt", "created_at"]
    list_filter = ["project", "source_name"]
    search_fields = ["uid", "prompt"]
    readonly_fields = ["content_hash", "import_batch", "created_at"]
    inlines = [FinalLabelInline, AnnotationInline]
    list_select_related = ["project"]
    actions = ["queue_for_annotation"]

    @admin.action(description="Queue for annotation (a new batch per project)")
    def queue_for_annotation(self, request, queryset):
        # No ordering: DISTINCT over the list's ordering columns would repeat each project.
        for project_id in queryset.order_by().values_list("project", flat=True).distinct():
            project = Project.objects.get(pk=project_id)
            ids = list(queryset.filter(project=project).values_list("pk", flat=True))
            try:
                batch = services.create_assignment_batch(
                    project, by=request.user, name=f"admin batch of {len(ids)}", sample_ids=ids
                )
            except (LabelError, PermissionDenied) as error:
                self.message_user(request, f"{project}: {error}", messages.ERROR)
                continue
            self.message_user(request, f"{project}: queued {batch.items.count()} samples", messages.SUCCESS)

    @admin.display(description="prompt")
    def short_prompt(self, obj: Sample) -> str:
        return obj.prompt[:120]


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "filename",
        "adapter",
        "status",
        "rows_read",
        "created_count",
        "duplicate_count",
        "existing_count",
        "created_at",
    ]
    list_filter = ["status", "adapter"]
    readonly_fields = [f.name for f in ImportBatch._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ExportSnapshot)
class ExportSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "profile", "status", "formats", "directory", "created_at"]
    list_filter = ["status", "profile"]
    readonly_fields = [f.name for f in ExportSnapshot._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AssignmentBatch)
class AssignmentBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "annotations_per_sample", "active", "created_at"]
    list_filter = ["active", "project"]
    readonly_fields = ["project", "annotations_per_sample", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False  # queue samples with the Samples list action or the API


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["sample", "annotator", "status", "flagged", "lease_expires_at", "submitted_at"]
    list_filter = ["status", "flagged"]
    readonly_fields = [f.name for f in Assignment._meta.fields]
    list_select_related = ["sample", "annotator"]

    def has_add_permission(self, request):
        return False


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ["annotation", "changed_by", "changed_at"]
    readonly_fields = [f.name for f in AnnotationRevision._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["sample", "reason", "created_at", "resolved_at", "resolved_by"]
    list_filter = ["resolved_at"]
    readonly_fields = [f.name for f in ReviewItem._meta.fields]

    def has_add_permission(self, request):
        return False
