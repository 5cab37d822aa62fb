"""Routes of the moderation API (included under api/ by config/urls.py): ensembles, moderate,
feedback, decisions, weight history."""

from django.urls import path

from . import api

urlpatterns = [
    path("moderation/ensembles/", api.ensembles, name="moderation-ensembles"),
    path("moderation/decisions/<int:decision_id>/feedback/", api.feedback, name="moderation-feedback"),
    path("moderation/<slug:slug>/", api.moderate, name="moderation"),
    path("moderation/<slug:slug>/decisions/", api.decisions, name="moderation-decisions"),
    path("moderation/<slug:slug>/history/", api.history, name="moderation-history"),
]
