from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The job kernel shared by every long job (import, export, reports, blends, jury, generation,
    training, evaluation); depends on no other app of ours."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import worker_presence  # noqa: F401  (connects the worker's presence signals)
