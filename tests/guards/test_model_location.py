"""A base model named by a Hugging Face id is read from the Hugging Face cache only, never from a
folder that bears its name in the worker's working directory (which a project admin could aim
at server folders); a path is read as given."""

from pathlib import Path

import pytest

from guards.loading import ModelUnavailable, load_causal_guard, model_location
from tests.tiny_models import tiny_llama

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")
CORPUS = ["safe and unsafe words", "a tiny tokenizer for a tiny model"] * 20


@pytest.fixture
def empty_offline_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, offline (huggingface_hub reads both at call time)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def gpt2_folder_in_the_working_directory(tmp_path, monkeypatch) -> Path:
    folder = tiny_llama(tmp_path / "work" / "gpt2", CORPUS)
    monkeypatch.chdir(folder.parent)
    return folder


def test_a_hub_id_never_loads_a_folder_of_its_name_in_the_working_directory(
    empty_offline_cache, gpt2_folder_in_the_working_directory
):
    with pytest.raises(ModelUnavailable, match=r"gpt2: not in the Hugging Face cache .* HF_HUB_OFFLINE is set"):
        load_causal_guard("gpt2", None)


def test_a_lora_run_on_a_hub_id_never_trains_a_folder_of_its_name(
    empty_offline_cache, gpt2_folder_in_the_working_directory, tmp_path
):
    from training.trainers.lora import LoraSettings, train_lora

    example = {"messages": [{"role": "user", "content": "hello"}], "completion": "safe"}
    with pytest.raises(ModelUnavailable, match="gpt2: not in the Hugging Face cache"):
        train_lora("gpt2", [example], [], tmp_path / "run", LoraSettings(max_steps=1), lambda *_: False)
    assert not (tmp_path / "run").exists()


def test_a_hub_id_loads_its_snapshot_from_the_cache(empty_offline_cache, gpt2_folder_in_the_working_directory):
    snapshot = empty_offline_cache / "models--gpt2" / "snapshots" / "0123abc"
    tiny_llama(snapshot, CORPUS)
    (empty_offline_cache / "models--gpt2" / "refs").mkdir()
    (empty_offline_cache / "models--gpt2" / "refs" / "main").write_text("0123abc")
    assert model_location("gpt2") == str(snapshot)
    model, tokenizer, _ = load_causal_guard("gpt2", None)
    assert model.config.vocab_size == len(tokenizer)


def test_a_path_is_read_as_given(gpt2_folder_in_the_working_directory):
    for name in (str(gpt2_folder_in_the_working_directory), "./gpt2"):
        assert model_location(name) == name
    model, _, _ = load_causal_guard("./gpt2", None)
    assert model.config.model_type == "llama"
