from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import services
from .importing.adapters import ADAPTERS
from .models import Annotation, ExportSnapshot, FinalLabel, ImportBatch, Project, Sample
from .tasks import export_snapshot_task, import_batch_task


class ImportForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .json, .csv or .parquet, optionally .gz")
    adapter = forms.ChoiceField(choices=[(name, f"{name}: {a.description}") for name, a in ADAPTERS.items()])
    source_name = forms.CharField(required=False, help_text="Defaults to the adapter's source name.")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "taxonomy", "annotations_per_sample", "needs_caution_policy", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["export_projects"]
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
                transaction.on_commit(lambda: import_batch_task.delay(batch.pk), robust=True)
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
    def export_projects(self, request, queryset):
        for project in queryset:
            with transaction.atomic():
                snapshot = services.start_export(project, created_by=request.user)
                transaction.on_commit(lambda pk=snapshot.pk: export_snapshot_task.delay(pk), robust=True)
            self.message_user(request, f"Export {snapshot.pk} of {project} started.", messages.SUCCESS)


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
    list_display = ["id", "project", "status", "formats", "directory", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ExportSnapshot._meta.fields]

    def has_add_permission(self, request):
        return False
