"""The project console: create projects, members, uploads with live progress, queueing, exports
with downloads, and the sample browser. Views are thin: services write, selectors read."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from annotation.browse import (
    BrowseError,
    SampleFilters,
    browse_page,
    filter_choices,
    parse_cursor,
    parse_page_size,
    sample_record,
)
from annotation.console import (
    console_projects,
    export_file_path,
    export_files,
    import_status,
    project_batches,
    project_members,
)
from annotation.importing.errors import ImportDataError
from annotation.jobs import launch_export, launch_import
from annotation.labels import LabelError
from annotation.models import ExportSnapshot, ImportBatch, JobStatus, Project, ProjectRole, Sample
from annotation.permissions import project_roles, require_admin
from annotation.selectors import project_exports, project_imports
from annotation.services import add_member, create_project
from annotation.services.members import change_member_role, remove_member
from annotation.services.queueing import queue_matching_samples
from core.selectors import worker_notice
from jury.selectors import sample_verdicts

from .console_forms import ExportForm, MemberForm, ProjectForm, UploadForm


def _admin_project(request, pk: int) -> Project:
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    return project


def _context(project: Project, tab: str, *, is_admin: bool = True, **extra) -> dict:
    """What the console's layout needs (tabs); ``is_admin`` shows the admin-only ones."""
    return {"project": project, "tab": tab, "is_admin": is_admin, **extra}


@login_required
def home(request):
    """Projects one administers or reviews; staff create projects here."""
    form = ProjectForm(request.POST or None) if request.user.is_staff else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied("only staff create projects")
        if form.is_valid():
            project = create_project(created_by=request.user, **form.cleaned_data)
            messages.success(request, f"Project “{project.name}” created. Add its members next.")
            return redirect("frontend:console-members", pk=project.pk)
    return render(
        request,
        "frontend/console/home.html",
        {"projects": console_projects(request.user), "form": form},
        status=400 if form is not None and form.errors else 200,
    )


@login_required
def members(request, pk: int):
    project = _admin_project(request, pk)
    form = MemberForm(request.POST if "add" in request.POST else None)
    if request.method == "POST":
        try:
            if "add" in request.POST:
                if form.is_valid():
                    membership = add_member(project, by=request.user, **form.cleaned_data)
                    messages.success(
                        request, f"{membership.user.username} is now {membership.get_role_display().lower()}."
                    )
                    return redirect("frontend:console-members", pk=project.pk)
            elif "remove" in request.POST:
                remove_member(project, by=request.user, membership_id=int(request.POST["remove"]))
                messages.success(request, "Role removed.")
                return redirect("frontend:console-members", pk=project.pk)
            else:
                change_member_role(
                    project,
                    by=request.user,
                    membership_id=int(request.POST["membership"]),
                    role=request.POST.get("role", ""),
                )
                messages.success(request, "Role changed.")
                return redirect("frontend:console-members", pk=project.pk)
        except (LabelError, ValueError, KeyError) as problem:
            messages.error(request, str(problem))
    context = _context(
        project,
        "members",
        members=project_members(project),
        form=form,
        roles=ProjectRole.choices,
        batches=project_batches(project)[:20],
    )
    return render(request, "frontend/console/members.html", context)


@login_required
def imports(request, pk: int):
    project = _admin_project(request, pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            batch = launch_import(project, by=request.user, **form.cleaned_data)
            return redirect("frontend:console-import", batch_id=batch.pk)
        except (ImportDataError, ValueError) as problem:
            error = str(problem)
    context = _context(project, "imports", form=form, error=error, batches=project_imports(project)[:50])
    status = 400 if request.method == "POST" else 200
    return render(request, "frontend/console/imports.html", context, status=status)


def _admin_batch(request, batch_id: int) -> ImportBatch:
    batch = get_object_or_404(ImportBatch.objects.select_related("project"), pk=batch_id)
    require_admin(request.user, batch.project)
    return batch


@login_required
def import_progress(request, batch_id: int):
    batch = _admin_batch(request, batch_id)
    notice = worker_notice() if batch.status == JobStatus.PENDING else ""  # a forgotten worker, not a spinner
    context = _context(batch.project, "imports", batch=batch, state=import_status(batch), notice=notice)
    return render(request, "frontend/console/import_progress.html", context)


@login_required
def import_progress_json(request, batch_id: int):
    return JsonResponse(import_status(_admin_batch(request, batch_id)))


@login_required
def queue(request, pk: int):
    """Queues what the browser's filters match; one message says what happened."""
    project = _admin_project(request, pk)
    if request.method != "POST":
        return redirect("frontend:console-samples", pk=project.pk)
    limit = request.POST.get("limit", "").strip()
    try:
        filters = SampleFilters.from_params(request.POST)
        if limit and not limit.isdigit():
            raise LabelError("limit", f"{limit!r} is not a whole number")
        outcome = queue_matching_samples(
            project,
            by=request.user,
            filters=filters,
            limit=int(limit) if limit else None,
            name=request.POST.get("name", "").strip(),
        )
        messages.success(request, outcome.message)
    except (LabelError, BrowseError) as problem:
        messages.error(request, f"Nothing queued: {problem.message}.")
        filters = SampleFilters()
    url = reverse("frontend:console-samples", args=[project.pk])
    params = filters.as_params()
    return redirect(f"{url}?{urlencode(params)}" if params else url)


@login_required
def exports(request, pk: int):
    project = _admin_project(request, pk)
    form = ExportForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = launch_export(project, by=request.user, **form.options())
            messages.info(request, f"Export {snapshot.pk} is {snapshot.get_status_display().lower()}.")
            return redirect("frontend:console-exports", pk=project.pk)
        except ValueError as problem:
            error = str(problem)
    snapshots = [(snapshot, export_files(snapshot)) for snapshot in project_exports(project)[:30]]
    context = _context(
        project,
        "exports",
        form=form,
        error=error,
        snapshots=snapshots,
        running=any(s.status in (JobStatus.PENDING, JobStatus.RUNNING) for s, _ in snapshots),
        notice=worker_notice() if any(s.status == JobStatus.PENDING for s, _ in snapshots) else "",
    )
    return render(request, "frontend/console/exports.html", context, status=400 if form.errors or error else 200)


@login_required
def export_download(request, snapshot_id: int, name: str):
    snapshot = get_object_or_404(ExportSnapshot.objects.select_related("project"), pk=snapshot_id)
    require_admin(request.user, snapshot.project)
    path = export_file_path(snapshot, name)
    if path is None or not path.is_file():
        raise Http404(f"no file {name!r} in export {snapshot.pk}")
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)


def _reviewer_project(request, pk: int) -> tuple[Project, bool]:
    """Reviewers and admins only (the browser shows every annotator's labels); and is it an admin?"""
    project = get_object_or_404(Project, pk=pk)
    roles = project_roles(request.user, project)
    if not roles & {ProjectRole.ADMIN, ProjectRole.REVIEWER}:
        raise PermissionDenied(f"{request.user} is not project admin or reviewer in project {project.slug!r}")
    return project, ProjectRole.ADMIN in roles


@login_required
def samples(request, pk: int):
    project, is_admin = _reviewer_project(request, pk)
    error = ""
    try:
        filters = SampleFilters.from_params(request.GET)
        page = browse_page(
            project,
            filters,
            cursor=parse_cursor(request.GET.get("cursor")),
            page_size=parse_page_size(request.GET.get("page_size")),
        )
    except BrowseError as problem:
        error, filters, page = str(problem), SampleFilters(), None
    params = filters.as_params()
    if page and request.GET.get("page_size"):
        params["page_size"] = request.GET["page_size"]
    context = _context(
        project,
        "samples",
        is_admin=is_admin,
        filters=filters,
        page=page,
        error=error,
        choices=filter_choices(project),
        next_query=urlencode({**params, "cursor": page.next_cursor}) if page and page.next_cursor else "",
        first_query=urlencode(params),
        paged="cursor" in request.GET,
    )
    return render(request, "frontend/console/samples.html", context, status=400 if error else 200)


@login_required
def sample_detail(request, pk: int, sample_id: int):
    project, is_admin = _reviewer_project(request, pk)
    sample = get_object_or_404(Sample, pk=sample_id, project=project)
    return render(
        request,
        "frontend/console/sample.html",
        _context(project, "samples", is_admin=is_admin, **sample_record(sample), verdicts=sample_verdicts(sample)),
    )
