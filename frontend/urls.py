from django.urls import path

from . import views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/label/", views.label, name="label"),
    path("projects/<int:pk>/dashboard/", views.dashboard, name="dashboard"),
]
