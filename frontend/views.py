from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from annotation.selectors import projects_with_counts


@login_required
def home(request):
    return render(request, "frontend/home.html", {"projects": projects_with_counts()})
