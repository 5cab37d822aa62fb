"""Routes of the taxonomy API (included under api/ by config/urls.py)."""

from rest_framework.routers import SimpleRouter

from .api import TaxonomyViewSet

router = SimpleRouter()
router.register("taxonomies", TaxonomyViewSet, basename="taxonomy")

urlpatterns = router.urls
