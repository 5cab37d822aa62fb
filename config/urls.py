from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from annotation.api import ExportSnapshotViewSet, ImportBatchViewSet, ProjectViewSet
from taxonomy.api import TaxonomyViewSet

router = DefaultRouter()
router.include_format_suffixes = False  # export file names carry their own suffix (train.jsonl)
router.register("taxonomies", TaxonomyViewSet, basename="taxonomy")
router.register("projects", ProjectViewSet, basename="project")
router.register("imports", ImportBatchViewSet, basename="import")
router.register("exports", ExportSnapshotViewSet, basename="export")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(router.urls)),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("frontend.urls")),
]
