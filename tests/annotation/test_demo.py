"""The demo data command behind the README's first command."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from annotation.models import Project


@pytest.mark.django_db
def test_load_demo_makes_accounts_and_a_project_of_real_rows(settings, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    out = capsys.readouterr().out
    assert "admin / aegis-demo-admin" in out
    assert authenticate(username="admin", password="aegis-demo-admin").is_superuser
    project = Project.objects.get(slug="demo")
    count = project.samples.count()
    assert count > 5000
    call_command("load_demo")
    assert project.samples.count() == count


@pytest.mark.django_db
def test_load_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_demo")


@pytest.mark.django_db
def test_demo_annotators_can_label_at_once(settings):
    from django.contrib.auth import get_user_model

    from annotation.services import next_assignment, submit_annotation

    settings.DEBUG = True
    call_command("load_demo")
    project = Project.objects.get(slug="demo")
    annotator = get_user_model().objects.get(username="annotator1")
    assignment = next_assignment(annotator, project)
    has_response = assignment.sample.response is not None
    submit_annotation(assignment.pk, annotator, prompt_label="safe", response_label="safe" if has_response else None)
