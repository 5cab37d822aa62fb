"""Routes of the jury API (included under api/ by config/urls.py): jurors, jury jobs, generation jobs."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:pk>/jurors/", api.jurors, name="project-jurors"),
    path("projects/<int:pk>/jury-jobs/", api.jobs, name="project-jury-jobs"),
    path("jury-jobs/<int:job_id>/", api.job_detail, name="jury-job"),
    path("jury-jobs/<int:job_id>/cancel/", api.cancel, name="jury-job-cancel"),
    path("projects/<int:pk>/generation-jobs/", api.generation_jobs, name="project-generation-jobs"),
    path("generation-jobs/<int:job_id>/", api.generation_job_detail, name="generation-job"),
    path("generation-jobs/<int:job_id>/cancel/", api.cancel_generation, name="generation-job-cancel"),
]
