"""The jury page of a project: start, watch and cancel jury and generation jobs."""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render

from annotation.models import Project
from annotation.permissions import require_admin
from core.jobs import start_job
from core.selectors import worker_notice
from jury.generation import REFUSAL_STRATEGIES, GenerationError, cancel_generation_job, start_generation_job
from jury.models import GenerationJob, JurorBackend, JuryJob
from jury.selectors import project_generation_jobs, project_jurors, project_jury_jobs
from jury.services import JuryError, cancel_jury_job, start_jury_job


def _start_generation(request, project: Project) -> None:
    form = request.POST
    limit = form.get("limit", "").strip()
    with transaction.atomic():
        job = start_generation_job(
            project,
            by=request.user,
            kind=form.get("kind", "refusal"),
            model=form.get("model", "").strip(),
            backend=form.get("backend", "openai"),
            base_url=form.get("base_url", "").strip(),
            strategies=form.getlist("strategies"),
            limit=int(limit) if limit.isdigit() else None,
        )
        start_job(job)


def _handle_jobs_form(request, project: Project) -> None:
    form = request.POST
    if "cancel" in form:
        cancel_jury_job(get_object_or_404(JuryJob, pk=int(form["cancel"]), project=project), by=request.user)
    elif "cancel_generation" in form:
        job = get_object_or_404(GenerationJob, pk=int(form["cancel_generation"]), project=project)
        cancel_generation_job(job, by=request.user)
    elif "generate" in form:
        _start_generation(request, project)
    else:
        with transaction.atomic():
            job = start_jury_job(project, by=request.user, part=form.get("part", "response"))
            start_job(job)


@login_required
def jury_jobs(request, pk: int):
    """Jury and generation jobs of a project: start, watch progress, cancel; says so when no
    worker runs."""
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    error = ""
    if request.method == "POST":
        try:
            _handle_jobs_form(request, project)
            return redirect("frontend:jury-jobs", pk=project.pk)
        except (JuryError, GenerationError) as problem:
            error = str(problem)
    jobs = list(project_jury_jobs(project)[:50])
    generation_jobs = list(project_generation_jobs(project)[:50])
    context = {
        "project": project,
        "jurors": project_jurors(project),
        "jobs": jobs,
        "generation_jobs": generation_jobs,
        "strategies": REFUSAL_STRATEGIES,
        "backends": JurorBackend.choices,
        "running": any(job.status in ("pending", "running") for job in [*jobs, *generation_jobs]),
        "notice": worker_notice(),
        "error": error,
    }
    return render(request, "frontend/jury_jobs.html", context)
