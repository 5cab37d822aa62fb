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
