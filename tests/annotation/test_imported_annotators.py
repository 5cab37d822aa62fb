"""Imported annotator names live in their own namespace; only staff's --map-annotators reaches real accounts."""

import json

import pytest
from django.core.management import call_command

from annotation.importing.errors import ImportDataError
from annotation.models import Annotation
from annotation.services import import_samples
from annotation.services.reports import agreement_report

pytestmark = pytest.mark.django_db


def write(path, *annotators):
    rows = [
        {
            "id": f"s{i}",
            "prompt": f"prompt {i}",
            "annotations": [{"annotator": a, "prompt_label": "safe"} for a in annotators],
        }
        for i in range(3)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_name_of_a_staff_account_does_not_reach_that_account(project, tmp_path, django_user_model):
    staff = django_user_model.objects.create_user("root", is_staff=True, is_superuser=True)
    import_samples(project, write(tmp_path / "a.jsonl", "root", "alice"), adapter="generic")
    assert not Annotation.objects.filter(annotator=staff).exists()
    imported = django_user_model.objects.get(username="imported:root")
    assert not imported.is_active and not imported.has_usable_password()
    assert Annotation.objects.filter(annotator=imported).count() == 3
    report = agreement_report(project, bootstrap=0)
    names = {row["annotator"] for row in report["fields"]["prompt_label"]["leave_one_out"]}
    assert "root" not in names and {"imported:root", "imported:alice"} <= names


@pytest.mark.parametrize("name", ["bad name", "a/b", "<script>", "x" * 142, "eve:staff"])
def test_annotator_names_are_validated_with_a_located_error(project, tmp_path, name):
    with pytest.raises(ImportDataError) as caught:
        import_samples(project, write(tmp_path / "bad.jsonl", "ok", name), adapter="generic")
    assert str(caught.value).startswith("bad.jsonl, line 1, field 'annotations[2].annotator': annotator name")


def test_staff_may_map_names_onto_existing_accounts_from_the_command_line(project, tmp_path, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    call_command("import_samples", str(write(tmp_path / "m.jsonl", "alice", "bob")), project=project.slug,
                 adapter="generic", map_annotators=True)  # fmt: skip
    assert Annotation.objects.filter(annotator=alice).count() == 3
    assert Annotation.objects.filter(annotator__username="imported:bob").count() == 3
