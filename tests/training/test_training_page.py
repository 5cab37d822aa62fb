"""The training page offers first the trainer this machine can run: MiniLM without a GPU."""

import pytest

from training import selectors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("gpus, kind", [([], "minilm"), (["0000:01:00.0"], "lora")])
def test_the_default_trainer_follows_the_gpus_the_driver_shows(client, small_export, boss, tmp_path, monkeypatch,
                                                               gpus, kind):  # fmt: skip
    folder = tmp_path / "gpus"
    folder.mkdir()
    for name in gpus:
        (folder / name).mkdir()
    monkeypatch.setattr(selectors, "NVIDIA_GPUS", folder)
    assert selectors.default_trainer() == kind
    client.force_login(boss)
    page = client.get(f"/projects/{small_export.project_id}/training/").content.decode()
    assert f'<option value="{kind}" selected>' in page and page.count(" selected>") == 1
    assert ("No GPU is visible here" in page) == (kind == "minilm")


def test_no_driver_means_no_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(selectors, "NVIDIA_GPUS", tmp_path / "absent")
    assert not selectors.cuda_visible() and selectors.default_trainer() == "minilm"


def test_the_registry_shows_a_runs_settings_and_metrics_as_rows(client, small_export, boss):
    from training.models import GuardModel, TrainingBlend, TrainingRun

    blend = TrainingBlend.objects.create(project_id=small_export.project_id, export=small_export, status="succeeded")
    run = TrainingRun.objects.create(
        blend=blend,
        kind="minilm",
        base_model="minilm",
        status="succeeded",
        config={"learning_rate": 0.001, "target_modules": ["query", "value"]},
        metrics={"prompt_harm": {"validation": {"f1": 0.8333333}}, "response_harm": {"stopped": True}},
    )
    GuardModel.objects.create(name="demo-guard", kind="minilm", base_model="minilm", path="/g", run=run)
    client.force_login(boss)
    page = client.get("/models/").content.decode()
    assert "<dt>learning rate</dt><dd>0.001</dd>" in page and "<dt>target modules</dt><dd>query, value</dd>" in page
    assert "<dt>prompt harm · validation · F1</dt><dd>0.8333</dd>" in page
    assert "<dt>response harm · stopped</dt><dd>yes</dd>" in page and "{&#x27;" not in page
