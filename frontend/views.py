from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render

from annotation.models import Project, ProjectRole
from annotation.permissions import project_roles, require_admin
from annotation.selectors import project_dashboard, user_projects


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
