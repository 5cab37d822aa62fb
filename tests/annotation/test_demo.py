"""The demo data command behind the README's first command."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from annotation.models import Annotation, ExportSnapshot, Project
from annotation.services import next_assignment, submit_annotation


@pytest.fixture
def demo(settings, db, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    return Project.objects.get(slug="demo"), capsys.readouterr().out


def test_load_demo_makes_accounts_a_project_of_real_rows_and_an_export(demo):
    project, out = demo
    assert "admin / aegis-demo-admin" in out
    assert authenticate(username="admin", password="aegis-demo-admin").is_superuser
    count = project.samples.count()
    assert count > 5000
    export = ExportSnapshot.objects.get(project=project)
    assert export.status == "succeeded" and export.manifest["counts"]["train"]["rows"] > 1000
    assert f"export {export.pk}" in out  # the training page has data to train the MiniLM guard on
    call_command("load_demo")
    assert project.samples.count() == count and ExportSnapshot.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_load_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_demo")


def test_demo_annotators_get_a_mixed_queue_and_can_label(demo):
    """Sources in turn from the first item: prompt-only (SimpleSafetyTests) and prompt+response
    (XSTest completions) items alternate, rather than 100 self-harm prompts first."""
    project, out = demo
    assert "xstest_completions_gpt4 and simple_safety_tests in turn" in out
    annotator = get_user_model().objects.get(username="annotator1")
    served = []
    for _ in range(6):
        assignment = next_assignment(annotator, project)
        sample = assignment.sample
        has_response = sample.response is not None
        submit_annotation(
            assignment.pk, annotator, prompt_label="safe", response_label="safe" if has_response else None
        )
        served.append((sample.source_name, has_response))
    assert served == [("simple_safety_tests", False), ("xstest_completions_gpt4", True)] * 3
    mine = Annotation.objects.filter(annotator=annotator)
    assert mine.count() == 6 and set(mine.values_list("prompt_label", flat=True)) == {"safe"}
    harm_areas = {
        project.samples.get(pk=pk).metadata.get("harm_area")
        for pk in mine.filter(sample__source_name="simple_safety_tests").values_list("sample", flat=True)
    }
    assert len(harm_areas) > 1  # shuffled: not every first prompt from the same harm area
