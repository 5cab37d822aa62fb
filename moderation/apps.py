from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Online moderation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from annotation.signals import final_label_decided

        from .models import Ensemble
        from .receivers import forget_known_ensembles, queue_final_label_feedback

        final_label_decided.connect(queue_final_label_feedback, dispatch_uid="moderation-final-label-feedback")
        post_save.connect(forget_known_ensembles, sender=Ensemble, dispatch_uid="moderation-ensemble-saved")
        post_delete.connect(forget_known_ensembles, sender=Ensemble, dispatch_uid="moderation-ensemble-deleted")
