"""Whether a project has an ensemble is looked up once per short window per process (it is asked
after every final label a labelling request decides); ensembles saved here are seen at once."""

import pytest

from annotation.labels import LabelSource
from annotation.models import FinalLabel, Sample
from moderation import services
from moderation.models import Decision, Ensemble
from moderation.receivers import ENSEMBLE_LOOKUP_SECONDS, has_ensemble, queue_final_label_feedback
from tests.core.test_broker_down import broker_down  # noqa: F401  (the task broker refusing connections)
from tests.moderation.conftest import KeywordGuard, register_guard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db
def test_a_project_is_looked_up_once_per_window(project, django_assert_num_queries):
    clock = Clock()
    with django_assert_num_queries(1):
        assert not has_ensemble(project.pk, clock=clock)
        clock.now += ENSEMBLE_LOOKUP_SECONDS * 0.9
        assert not has_ensemble(project.pk, clock=clock)
    clock.now += ENSEMBLE_LOOKUP_SECONDS * 0.2
    with django_assert_num_queries(1):
        assert not has_ensemble(project.pk, clock=clock)


@pytest.mark.django_db
def test_an_ensemble_made_by_another_process_is_seen_once_the_window_passes(project):
    clock = Clock()
    assert not has_ensemble(project.pk, clock=clock)
    # written as another process would be seen from here: no signal reaches this one
    Ensemble.objects.bulk_create([Ensemble(name="Elsewhere", slug="elsewhere", project=project)])
    assert not has_ensemble(project.pk, clock=clock)  # missed for at most the window
    clock.now += ENSEMBLE_LOOKUP_SECONDS
    assert has_ensemble(project.pk, clock=clock)


@pytest.mark.django_db
def test_an_ensemble_saved_here_feeds_on_the_next_final_label(project, staff, fake_guards, broker_down):  # noqa: F811
    sample = Sample.objects.create(project=project, uid="s1", turns=[], prompt="a gun", response=None,
                                   source_name="t", content_hash="h1")  # fmt: skip
    FinalLabel.objects.create(sample=sample, prompt_label="unsafe", prompt_label_source=LabelSource.HUMAN)
    queue_final_label_feedback(sender=FinalLabel, sample_id=sample.pk, project_id=project.pk)  # none yet: remembered
    fake_guards["strict"] = KeywordGuard("strict", ("gun",))
    ensemble = services.create_ensemble(
        name="Keywords", slug="keywords", experts=[{"guard": register_guard("strict").pk}], by=staff, project=project
    )
    decision = services.moderate(ensemble, "a gun", None)
    queue_final_label_feedback(sender=FinalLabel, sample_id=sample.pk, project_id=project.pk)
    assert Decision.objects.get(pk=decision.pk).feedback_label == "unsafe"
    ensemble_pk = ensemble.pk
    Decision.objects.filter(ensemble_id=ensemble_pk).delete()
    ensemble.experts.all().delete()
    ensemble.delete()
    assert not has_ensemble(project.pk)  # deleted here: seen at once
