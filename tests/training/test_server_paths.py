"""Server paths in training: staff only, inside AEGIS_SERVER_PATH_ROOTS, never revealing whether they exist."""

import pytest
from django.core.exceptions import PermissionDenied

from annotation.models import Membership
from training.models import TrainingRun
from training.services import build_blend, start_training_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user("padmin")
    Membership.objects.create(project=project, user=user, role="admin")
    return user


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/no-such-file.jsonl"])
def test_topic_following_is_staff_only_and_says_the_same_for_any_path(small_export, project_admin, path):
    with pytest.raises(PermissionDenied) as caught:
        build_blend(small_export, by=project_admin, options={"topic_following": path})
    assert str(caught.value) == "only staff may read topic-following files (a path on the server)"


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/no-such-file.jsonl"])
def test_staff_paths_outside_the_roots_are_refused_alike(small_export, boss, path):
    with pytest.raises(PermissionDenied) as caught:
        build_blend(small_export, by=boss, options={"topic_following": path})
    assert str(caught.value) == (
        f"cannot read topic-following files: {path!r} is outside the folders the server may read "
        "(AEGIS_SERVER_PATH_ROOTS)"
    )


def test_lora_base_model_paths_are_staff_only_but_hub_ids_are_not(small_export, boss, project_admin):
    blend = build_blend(small_export, by=boss)
    for path in ("/etc", "../../models/x", "./local-model"):
        with pytest.raises(PermissionDenied, match="only staff may train from a base model on the server"):
            start_training_run(blend, by=project_admin, kind="lora", base_model=path)
    with pytest.raises(PermissionDenied, match="outside the folders the server may read"):
        start_training_run(blend, by=boss, kind="lora", base_model="/etc")
    run = start_training_run(blend, by=project_admin, kind="lora", base_model="Qwen/Qwen3-0.6B")
    assert TrainingRun.objects.get(pk=run.pk).base_model == "Qwen/Qwen3-0.6B"
