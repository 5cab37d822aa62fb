"""Training end to end on a CPU: a tiny random Llama through blend, LoRA, save, reload, generate
and parse; and the MiniLM guard on real data against the majority-class baseline."""

import json
from pathlib import Path

import pytest

from annotation.services import export_dataset, import_samples
from guards.formats.nemoguard import parse_nemoguard_output
from taxonomy.selectors import CategoryIndex
from tests.tiny_models import tiny_llama
from training.models import GuardModel
from training.services import build_blend, read_blend, run_training, start_training_run
from training.trainers.common import TrainingError

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")
pytestmark = pytest.mark.django_db


@pytest.mark.once
def test_tiny_llama_lora_blend_train_save_reload_generate_parse(small_export, boss, project, tmp_path):
    import torch

    from guards.loading import load_lora_guard

    blend = build_blend(small_export, by=boss, options={"shuffle_probability": 0, "drop_probability": 0})
    examples = read_blend(blend, "train")
    corpus = [e["messages"][0]["content"] + e["completion"] for e in examples]
    base = tiny_llama(tmp_path / "base", corpus, vocab_size=1024)
    config = {"rank": 16, "alpha": 32, "dropout": 0.0, "learning_rate": 1e-2, "max_steps": 200, "batch_size": 5,
              "save_steps": 100, "target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"]}  # fmt: skip
    # a random base's output layer gives near-uniform logits; adapting it lets 200 steps learn the answers
    run = run_training(start_training_run(blend, by=boss, kind="lora", base_model=str(base), config=config))
    assert run.status == "succeeded", run.error
    assert (run.step, run.total_steps) == (200, 200) and run.loss is not None
    adapter = Path(run.directory) / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    assert (Path(run.directory) / "checkpoints" / "checkpoint-200").is_dir()
    manifest = json.loads((Path(run.directory) / "training_manifest.json").read_text())
    assert manifest["data_sha256"] and manifest["config"]["rank"] == 16 and manifest["metrics"]["steps"] == 200
    guard = GuardModel.objects.get(run=run)
    assert guard.path == str(adapter) and guard.prompt_format == "nemoguard"

    model, tokenizer = load_lora_guard(str(base), adapter)
    index = CategoryIndex.for_taxonomy(project.taxonomy)
    right = 0
    for example in examples:
        inputs = tokenizer.apply_chat_template(
            example["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        verdict = parse_nemoguard_output(text, index)
        right += verdict.parsed and verdict.prompt_label == example["prompt_label"] and text == example["completion"]
    assert right == len(examples)  # the adapter learnt the answers; the random base alone cannot write JSON


def test_training_settings_are_checked(small_export, boss, tmp_path):
    blend = build_blend(small_export, by=boss)
    with pytest.raises(TrainingError, match="unknown training settings: epoch"):
        start_training_run(blend, by=boss, kind="lora", base_model="x", config={"epoch": 1})
    with pytest.raises(TrainingError, match="needs a base model"):
        start_training_run(blend, by=boss, kind="lora")
    with pytest.raises(TrainingError, match="rank: expected int"):
        start_training_run(blend, by=boss, kind="minilm", config={"rank": "big"})
    with pytest.raises(TrainingError, match="expected a JSON object"):
        start_training_run(blend, by=boss, kind="minilm", config=[1])
    with pytest.raises(TrainingError, match="nothing would be trained"):
        start_training_run(blend, by=boss, kind="minilm", config={"epochs": 0, "max_steps": 0})
    with pytest.raises(TrainingError, match=r"cpu_threads: expected 0 \(torch's choice\) or more, got -1"):
        start_training_run(blend, by=boss, kind="minilm", config={"cpu_threads": -1})
    missing = str(tmp_path / "nonexistent" / "model")  # inside AEGIS_SERVER_PATH_ROOTS, as staff's paths must be
    failed = run_training(start_training_run(blend, by=boss, kind="lora", base_model=missing))
    assert failed.status == "failed" and missing in failed.error
    assert not GuardModel.objects.exists()


@pytest.mark.once
def test_minilm_guard_beats_the_majority_baseline_on_real_data(project, boss, shared_data):
    from guards.loading import MiniLMGuard

    import_samples(project, shared_data / "openai_moderation" / "samples-1680.jsonl.gz", adapter="openai_moderation")
    import_samples(project, shared_data / "xstest" / "xstest_prompts.csv", adapter="xstest_prompts")
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    export = export_dataset(project, formats=["jsonl"], split_ratios=ratios)
    blend = build_blend(export, by=boss)
    config = {"epochs": 1.0, "max_length": 48, "batch_size": 32}
    run = run_training(start_training_run(blend, by=boss, kind="minilm", config=config))
    assert run.status == "succeeded", run.error
    validation = run.metrics["prompt_harm"]["validation"]
    assert validation["accuracy"] > validation["majority_baseline_accuracy"]
    test_rows = [json.loads(line) for line in (Path(export.directory) / "test.jsonl").open()]
    gold = [row["prompt_label"] == "unsafe" for row in test_rows]
    scores = MiniLMGuard(Path(run.directory) / "prompt_harm").scores([row["prompt"] for row in test_rows])
    accuracy = sum((s >= 0.5) == g for s, g in zip(scores, gold)) / len(gold)
    majority = max(sum(gold), len(gold) - sum(gold)) / len(gold)
    assert len(test_rows) > 150 and accuracy > majority + 0.05, (accuracy, majority)
    assert GuardModel.objects.get(run=run).kind == "minilm"


def test_minilm_batches_rows_of_similar_length_reproducibly_on_the_thread_count_set(shared_data, tmp_path):
    """Length-grouped batches pad less than plain shuffled ones; two runs with one seed train
    alike; torch uses the set thread count while training and its own count again after."""
    import csv
    import gzip

    import torch

    from training.trainers.minilm import MiniLMSettings, train_minilm

    with gzip.open(shared_data / "openai_moderation" / "samples-1680.jsonl.gz", "rt") as stream:
        prompts = [json.loads(line)["prompt"] for _, line in zip(range(32), stream)]  # mostly long
    with (shared_data / "xstest" / "xstest_prompts.csv").open(encoding="utf-8") as stream:
        prompts += [row["prompt"] for _, row in zip(range(32), csv.DictReader(stream))]  # short
    examples = [{"kind": "safety", "text": text, "response": None, "prompt_label": ("safe", "unsafe")[i % 2],
                 "response_label": None} for i, text in enumerate(prompts)]  # fmt: skip
    threads = []

    def report(step: int, *_) -> bool:
        if step:  # step 0 is reported with the plan, before the trainer starts
            threads.append(torch.get_num_threads())
        return False

    def train(name: str, **settings) -> dict:
        quick = MiniLMSettings(max_steps=3, batch_size=8, max_length=64, save_steps=10_000, **settings)
        return train_minilm(examples, [], tmp_path / name, quick, report)["prompt_harm"]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grouped, again = train("grouped", cpu_threads=1), train("again", cpu_threads=1)
        assert set(threads) == {1} and torch.get_num_threads() == 2
        shuffled = train("random", group_by_length=False, cpu_threads=0)
        assert set(threads[-3:]) == {2}
    finally:
        torch.set_num_threads(before)
    assert (grouped["train_loss"], grouped["padding_share"]) == (again["train_loss"], again["padding_share"])
    assert grouped["padding_share"] < shuffled["padding_share"] / 2, (grouped, shuffled)


def test_a_run_resumes_from_its_newest_checkpoint(small_export, boss, tmp_path):
    """A worker that stopped after checkpoint 2 (say, it was killed): running the task again goes
    on from there instead of starting over."""
    blend = build_blend(small_export, by=boss)
    examples = read_blend(blend, "train")
    base = tiny_llama(tmp_path / "base", [e["messages"][0]["content"] + e["completion"] for e in examples])
    config = {"rank": 4, "alpha": 8, "max_steps": 2, "save_steps": 2, "batch_size": 5}
    run = run_training(start_training_run(blend, by=boss, kind="lora", base_model=str(base), config=config))
    checkpoints = Path(run.directory) / "checkpoints"
    state_file = checkpoints / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["mark"] = "from the first run"  # survives only if the state is resumed
    state_file.write_text(json.dumps(state))
    type(run).objects.filter(pk=run.pk).update(config={**run.config, "max_steps": 4}, status="pending")
    run.refresh_from_db()
    run = run_training(run)
    assert run.status == "succeeded" and (run.step, run.total_steps) == (4, 4)
    history = json.loads((checkpoints / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    steps = [entry["step"] for entry in history if "loss" in entry]
    assert steps == [1, 2, 3, 4] and history[0]["mark"] == "from the first run"  # steps 1-2 were not redone


def test_progress_times_the_first_step_and_reports_each_steps_loss(monkeypatch):
    """The ETA after the first step extrapolates that step's duration (not ~0 s), and the loss a
    step logs reaches the reporter with that step."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from training.trainers import common

    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    seen = []
    callback = common.progress_callback(lambda *progress: seen.append(progress) or False)
    state, control = SimpleNamespace(global_step=0, max_steps=4), TrainerControl()
    for step, loss in [(1, 0.7), (2, 0.6)]:
        callback.on_step_begin(None, state, control)
        now[0] += 10.0
        state.global_step = step
        callback.on_step_end(None, state, control)
        callback.on_log(None, state, control, logs={"loss": loss})
    assert seen == [(1, 4, None, 30.0), (1, 4, 0.7, 30.0), (2, 4, 0.7, 20.0), (2, 4, 0.6, 20.0)]
