"""The site's URLs: admin, the API's root, schema and docs, sign-in, and each app's own urls.py."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from annotation.urls import router as annotation_router
from taxonomy.urls import router as taxonomy_router

# The browsable API root lists the apps' viewsets; their routes come with the includes below.
api_index = DefaultRouter()
api_index.registry.extend([*taxonomy_router.registry, *annotation_router.registry])

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api_index.get_api_root_view(), name="api-root"),
    path("api/", include("annotation.urls")),  # first: the labelling loop's routes (annotation/urls.py)
    path("api/", include("taxonomy.urls")),
    path("api/", include("jury.urls")),
    path("api/", include("training.urls")),
    path("api/", include("evaluation.urls")),
    path("api/", include("moderation.urls")),
    path("api/", include("core.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="frontend/swagger_ui.html"),
        name="api-docs",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("frontend.urls")),
]
