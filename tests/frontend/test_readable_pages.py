"""The model registry: settings and metrics as readable rows, not JSON dumps."""

import pytest

from frontend.readable import settings_rows

pytestmark = pytest.mark.django_db


def test_settings_rows_flatten_nested_values():
    rows = settings_rows({"learning_rate": 0.001, "target_modules": ["query", "key"], "prompt_harm": {
        "validation": {"f1": 0.8333333, "stopped": False}}, "seed": 42, "threshold": None})  # fmt: skip
    assert rows == [
        ("learning rate", "0.001"),
        ("target modules", "query, key"),
        ("prompt harm · validation · F1", "0.8333"),
        ("prompt harm · validation · stopped", "no"),
        ("seed", "42"),
        ("threshold", "—"),
    ]


def test_model_registry_shows_settings_and_metrics_as_rows(client, django_user_model):
    from training.models import GuardModel

    staff = django_user_model.objects.create_user("staff", is_staff=True)
    GuardModel.objects.create(name="<b>guard</b>", kind="minilm", base_model="minilm", path="/models/g")
    client.force_login(staff)
    page = client.get("/models/").content.decode()
    assert "&lt;b&gt;guard&lt;/b&gt;" in page and "<b>guard</b>" not in page
    assert "registered without a training run" in page
