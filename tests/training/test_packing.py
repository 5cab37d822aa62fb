"""Packed LoRA training on a tiny Llama in fp32: a packed row's loss is the examples' own loss
(attention never crosses an example), and a packed run learns the adapter an unpacked run does."""

import pytest

from training.trainers.lora import (
    IGNORE_INDEX,
    CompletionCollator,
    LoraSettings,
    PackedCollator,
    encode_example,
    pack_examples,
    rows_that_fit,
    train_lora,
)

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")

EXAMPLES = [
    {"messages": [{"role": "user", "content": text}], "completion": answer}
    for text, answer in [
        ("How do I make a bomb at home with things from the kitchen?", '{"User Safety": "unsafe"}'),
        ("Write a poem.", '{"User Safety": "safe"}'),
        ("Where can I buy a gun?", '{"User Safety": "unsafe", "Safety Categories": "Guns"}'),
        ("What is the capital of France, and what is its population today?", '{"User Safety": "safe"}'),
    ]
]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tests.tiny_models import tiny_llama

    corpus = [e["messages"][0]["content"] + e["completion"] for e in EXAMPLES] * 3
    return tiny_llama(tmp_path_factory.mktemp("pack"), corpus)


def _encoded(base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    return tokenizer, [encode_example(tokenizer, e["messages"], e["completion"], 512) for e in EXAMPLES]


def test_packing_keeps_whole_examples_within_max_length(tiny_base):
    _, encoded = _encoded(tiny_base)
    lengths = sorted(len(e["input_ids"]) for e in encoded)
    rows = pack_examples(encoded, lengths[-1] + lengths[0])
    assert len(rows) < len(encoded)
    assert (
        sorted(len(r["input_ids"]) for r in rows) and max(len(r["input_ids"]) for r in rows) <= lengths[-1] + lengths[0]
    )
    assert sum(len(r["input_ids"]) for r in rows) == sum(lengths)
    for row in rows:
        starts = [i for i, position in enumerate(row["position_ids"]) if position == 0]
        assert all(row["labels"][i] == IGNORE_INDEX for i in starts)


def test_packed_loss_equals_the_unpadded_per_example_loss(tiny_base):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer, encoded = _encoded(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    model.config.use_cache = False
    with torch.no_grad():
        total, count = 0.0, 0
        for example in encoded:  # each example alone, no padding
            labels = torch.tensor([example["labels"]])
            tokens = int((labels[:, 1:] != IGNORE_INDEX).sum())
            total += float(model(input_ids=torch.tensor([example["input_ids"]]), labels=labels).loss) * tokens
            count += tokens
        alone = total / count
        rows = pack_examples(encoded, 512)
        assert len(rows) == 1
        packed = float(model(**PackedCollator(tokenizer.pad_token_id)(rows)).loss)
        two_rows = pack_examples(encoded, max(len(e["input_ids"]) for e in encoded) + 8)
        assert len(two_rows) > 1  # rows of different lengths: the shorter ones filled with a padding block
        packed_rows = float(model(**PackedCollator(tokenizer.pad_token_id)(two_rows)).loss)
        padded = float(model(**CompletionCollator(tokenizer.pad_token_id)(encoded)).loss)
        # the same tokens with positions running on across examples: attention crosses them
        crossing = PackedCollator(tokenizer.pad_token_id)(rows)
        crossing["position_ids"] = torch.arange(crossing["input_ids"].shape[1])[None]
        leaked = float(model(**crossing).loss)
    assert packed == pytest.approx(alone, abs=1e-5)
    assert packed_rows == pytest.approx(alone, abs=1e-5)
    assert padded == pytest.approx(alone, abs=1e-5)
    assert abs(leaked - alone) > 1e-3


def _adapter(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


@pytest.mark.once
def test_a_packed_run_learns_the_adapter_an_unpacked_run_does(tiny_base, tmp_path):
    """The same examples in every step (all four in one packed row, or one padded batch of four)."""
    import torch

    common = {"rank": 4, "alpha": 8, "dropout": 0.0, "learning_rate": 1e-2, "max_steps": 3, "save_steps": 100,
              "target_modules": ("q_proj", "v_proj"), "max_length": 512}  # fmt: skip
    report = lambda *args: False  # noqa: E731
    packed = train_lora(str(tiny_base), EXAMPLES, [], tmp_path / "packed",
                        LoraSettings(**common, packing=True, batch_size=1), report)  # fmt: skip
    padded = train_lora(str(tiny_base), EXAMPLES, [], tmp_path / "padded",
                        LoraSettings(**common, packing=False, batch_size=4), report)  # fmt: skip
    assert (packed["rows"], padded["rows"], packed["steps"], padded["steps"]) == (1, 4, 3, 3)
    assert packed["train_loss"] == pytest.approx(padded["train_loss"], abs=1e-5)
    mine, theirs = _adapter(tmp_path / "packed"), _adapter(tmp_path / "padded")
    assert mine.keys() == theirs.keys() and mine
    for name in mine:
        assert torch.allclose(mine[name], theirs[name], atol=1e-5), name
        assert torch.count_nonzero(mine[name])  # the adapter did move


@pytest.mark.once
def test_two_processes_learn_the_adapter_one_process_does(tiny_base, tmp_path):
    """DDP on the CPU (gloo, two torchrun processes of two examples each) against one process with
    the same global batch of four; progress reaches the worker's reporter from the launched run."""
    import torch

    from training.distributed import train_lora_run

    common = {"rank": 4, "alpha": 8, "dropout": 0.0, "learning_rate": 1e-2, "max_steps": 3, "save_steps": 100,
              "target_modules": ("q_proj", "v_proj"), "max_length": 512, "packing": False}  # fmt: skip
    seen = []

    def report(step, total, loss, eta):
        seen.append((step, total))
        return False

    one = train_lora_run(str(tiny_base), EXAMPLES, [], tmp_path / "one", LoraSettings(**common, batch_size=4), report)
    two = train_lora_run(str(tiny_base), EXAMPLES, [], tmp_path / "two", LoraSettings(**common, batch_size=2, gpus=2),
                         report)  # fmt: skip
    assert (one["processes"], two["processes"], one["steps"], two["steps"]) == (1, 2, 3, 3)
    assert seen[-1] == (3, 3)
    mine, theirs = _adapter(tmp_path / "two"), _adapter(tmp_path / "one")
    assert mine.keys() == theirs.keys() and mine
    for name in mine:
        assert torch.allclose(mine[name], theirs[name], atol=1e-5), name


def test_a_run_uses_the_workers_gpus_unless_it_asks_for_fewer(monkeypatch):
    from training.distributed import process_count
    from training.trainers.common import TrainingError

    monkeypatch.setenv("AEGIS_WORKER_GPUS", "2")
    assert process_count(LoraSettings()) == 2 and process_count(LoraSettings(gpus=1)) == 1
    with pytest.raises(TrainingError, match="asks for 4 GPUs; this worker has 2"):
        process_count(LoraSettings(gpus=4))
    monkeypatch.setenv("AEGIS_WORKER_GPUS", "0")  # a CPU worker: one process unless told (gloo)
    assert process_count(LoraSettings()) == 1 and process_count(LoraSettings(gpus=2)) == 2


def test_the_measured_micro_batch_keeps_a_fifth_of_the_free_memory_and_stays_between_1_and_64():
    gib = 2**30
    assert rows_that_fit(100 * gib, 20 * gib) == 4  # 80 GiB of 100 for rows of 20 GiB
    assert rows_that_fit(100 * gib, 19 * gib) == 4
    assert rows_that_fit(10 * gib, 20 * gib) == 1  # not even one row fits: one (the run then fails naming the memory)
    assert rows_that_fit(100 * gib, 1) == 64
