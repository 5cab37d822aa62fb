from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TaxonomyConfig(AppConfig):
    name = "taxonomy"
    verbose_name = "Taxonomies"

    def ready(self) -> None:
        from .services import sync_builtin_taxonomies_after_migrate

        post_migrate.connect(sync_builtin_taxonomies_after_migrate, sender=self)
