from django.apps import AppConfig


class JuryConfig(AppConfig):
    name = "jury"
    verbose_name = "LLM jury"

    def ready(self) -> None:
        """Gives annotation the jury's parts of its reports and pages (annotation/extensions.py)."""
        from annotation import extensions

        from . import selectors

        extensions.jury_agreement.provide(selectors.jury_against_humans)
        extensions.jury_card_facts.provide(selectors.card_facts)
        extensions.jury_verdicts.provide(selectors.verdict_entries)
