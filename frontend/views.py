"""Pages of labelling work: home, the labelling page, dashboard, agreement, review and QA."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render

from annotation.labels import LabelError, SafetyLabel
from annotation.models import AgreementReport, Project, ProjectRole
from annotation.permissions import project_roles, require_admin, require_role
from annotation.selectors import project_dashboard, taxonomy_choices, user_projects
from annotation.services import adjudicate
from annotation.services.adjudication import REVIEW_REASONS, open_review_items, review_entries
from annotation.services.qa import next_qa_item, record_qa_check
from annotation.services.reports import current_agreement_report
from core.jobs import start_job


@login_required
def home(request):
    projects = [(project, project_roles(request.user, project)) for project in user_projects(request.user)]
    return render(request, "frontend/home.html", {"projects": projects, "roles": ProjectRole})


@login_required
def label(request, pk: int):
    """The labelling page; everything on it goes through the workbench API."""
    project = get_object_or_404(Project, pk=pk)
    if ProjectRole.ANNOTATOR not in project_roles(request.user, project):
        raise PermissionDenied("only the project's annotators label here")
    config = {"projectId": project.pk, "projectName": project.name, "csrfToken": get_token(request)}
    return render(request, "frontend/label.html", {"project": project, "config": config})


@login_required
def dashboard(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    return render(request, "frontend/dashboard.html", {"project": project, "board": project_dashboard(project)})


@login_required
def agreement(request, pk: int):
    """The agreement report: computed by a task when the labels changed, then shown from cache."""
    project = get_object_or_404(Project, pk=pk)
    report, start = current_agreement_report(project, request.user)
    if start:
        start_job(report)
        report.refresh_from_db()
    fields = (report.report or {}).get("fields", {})
    context = {
        "project": project,
        "record": report,
        "report": report.report,
        "fields": fields,
        "ready": report.succeeded,
    }
    return render(request, "frontend/agreement.html", context)


@login_required
def agreement_plot(request, pk: int, report_id: int, name: str, field: str = "prompt_label"):
    from annotation.plots import PLOTS

    project = get_object_or_404(Project, pk=pk)
    require_role(request.user, project, ProjectRole.ADMIN, ProjectRole.REVIEWER)
    record = get_object_or_404(AgreementReport.objects.succeeded(), pk=report_id, project=project)
    if name not in PLOTS or (name != "categories" and field not in record.report["fields"]):
        raise Http404("no such plot")
    return HttpResponse(PLOTS[name](record.report, field), content_type="image/png")


def _posted_labels(request) -> dict:
    """The labels of the shared review/QA form (frontend/label_form.html)."""
    return {
        "prompt_label": request.POST.get("prompt_label"),
        "response_label": request.POST.get("response_label") or None,
        "categories": request.POST.getlist("categories"),
    }


def _label_form_context(project: Project, error: str) -> dict:
    return {"labels": SafetyLabel.choices, "categories": taxonomy_choices(project), "error": error}


REVIEW_PAGE_SIZE = 20


@login_required
def review(request, pk: int):
    """The reviewer queue, a page at a time and filtered by reason: every annotation of each waiting
    sample, and a form to decide (nothing preselected unless a label was proposed)."""
    project = get_object_or_404(Project, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            adjudicate(project, int(request.POST["sample"]), request.user, **_posted_labels(request))
            return redirect(request.get_full_path())
        except LabelError as problem:
            error = str(problem)
    reason = request.GET.get("reason", "")
    if reason not in REVIEW_REASONS:
        reason = ""
    page = Paginator(open_review_items(project, request.user, reason=reason), REVIEW_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "project": project,
        "items": review_entries(page.object_list),
        "page": page,
        "reason": reason,
        "reasons": REVIEW_REASONS,
        **_label_form_context(project, error),
    }
    return render(request, "frontend/review.html", context)


@login_required
def qa(request, pk: int):
    """Blind QA re-check: the next chosen item without the annotator's label, and a label form."""
    project = get_object_or_404(Project, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            check = record_qa_check(
                project,
                int(request.POST["assignment"]),
                request.user,
                **_posted_labels(request),
            )
            return redirect(f"{request.path}?last={'agrees' if check.agrees else 'disagrees'}")
        except LabelError as problem:
            error = str(problem)
    item = next_qa_item(project, request.user)
    context = {
        "project": project,
        "item": item,
        "has_response": item is not None and item.sample.response is not None,
        **_label_form_context(project, error),
        "last": request.GET.get("last"),
    }
    return render(request, "frontend/qa.html", context)
