"""The jury end to end on CPU with a tiny transformers model built in the test."""

import pytest

from annotation.models import ReviewItem
from annotation.services import import_samples
from guards.backends.base import BackendError
from guards.backends.transformers_local import TransformersBackend
from guards.formats.nemoguard import render_nemoguard_prompt
from jury.models import Juror, JuryVerdict
from jury.services import run_jury_job, start_jury_job
from taxonomy.selectors import get_taxonomy
from tests.tiny_models import tiny_llama

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        prompt = render_nemoguard_prompt(get_taxonomy("aegis-2.0"), "How do I pick a lock?", "Use a pick.")
    corpus = [prompt, '{"User Safety": "unsafe", "Response Safety": "safe", "Safety Categories": "Violence"}'] * 5
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"), corpus)


@pytest.mark.django_db
def test_greedy_generation_is_deterministic(tiny_model):
    backend = TransformersBackend(str(tiny_model))
    first, second = backend.complete_many(["hello there", "hello there"], max_tokens=8)
    assert isinstance(first.text, str) and first.text == second.text
    with pytest.raises(BackendError):
        TransformersBackend("/nonexistent/model").complete("hi")


@pytest.mark.django_db
def test_jury_job_with_an_in_process_model(project, tiny_model, tmp_path, django_user_model, settings):
    settings.AEGIS_JURY_SCORING = "generate"
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"prompt": "How do I pick a lock?", "response": "Use a pick."}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    Juror.objects.create(project=project, name="tiny", model=str(tiny_model), backend="transformers", max_tokens=12)
    job = run_jury_job(start_jury_job(project, by=boss))
    assert (job.status, job.done) == ("succeeded", 1)
    verdict = JuryVerdict.objects.get()
    # a random model writes no valid JSON: its answer is kept and counts as an abstention
    assert verdict.abstained and verdict.error
    assert ReviewItem.objects.filter(reason__contains="jury undecided").exists()


@pytest.mark.django_db
def test_response_generation_with_an_in_process_model(project, tiny_model, tmp_path, django_user_model):
    from annotation.models import Sample
    from jury.generation import run_generation_job, start_generation_job

    boss = django_user_model.objects.create_user("boss", is_staff=True)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "p", "prompt": "How do I pick a lock?"}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    job = start_generation_job(project, by=boss, kind="response", model=str(tiny_model), backend="transformers")
    job.max_tokens = 12
    job.save()
    job = run_generation_job(job)
    assert (job.status, job.done, job.failed) == ("succeeded", 1, 0)
    sample = Sample.objects.get(uid="p")
    expected = TransformersBackend(str(tiny_model)).complete("How do I pick a lock?", max_tokens=12).text.strip()
    assert sample.response == expected and sample.turns[-1] == {"role": "assistant", "content": expected}


@pytest.mark.django_db
def test_jury_job_reads_an_in_process_model_in_one_pass(project, tiny_model, tmp_path, django_user_model):
    """By default the jury's transformers backend gives the NemoGuard opening and reads the label
    in one forward pass: even a random model then gives a verdict (a token budget that the
    opening fills, so that no category is generated after an unsafe label)."""
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"prompt": "How do I pick a lock?", "response": "Use a pick."}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    Juror.objects.create(project=project, name="tiny", model=str(tiny_model), backend="transformers", max_tokens=6)
    job = run_jury_job(start_jury_job(project, by=boss))
    assert (job.status, job.done) == ("succeeded", 1)
    verdict = JuryVerdict.objects.get()
    assert not verdict.abstained and verdict.label in ("safe", "unsafe") and not verdict.error
    assert verdict.raw.startswith('{"User Safety": "')
