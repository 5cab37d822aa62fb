"""LoRA fine-tuning of a causal LM into a guard that answers in the NemoGuard JSON format, with
the loss on the completion only (peft + transformers' Trainer). bf16 on a GPU, fp32 on a CPU;
checkpoints every ``save_steps`` and resume after a crash. The adapter is saved in peft's layout
(adapter_config.json + adapter_model.safetensors), which ``vllm serve --enable-lora`` loads.

Fast by default on a GPU: examples are packed into rows of ``max_length`` tokens with their
boundaries kept (position ids restart at every example; transformers then builds attention that
never crosses examples, block-diagonal for sdpa and eager, varlen for flash attention), so no
token is padding; without packing, batches group examples of similar length. Liger kernels are
used when installed (the ``gpu`` extra) on CUDA. Unless ``batch_size`` is set, the micro-batch is
measured: what one probe row takes of the GPU's memory against what is free with the model on it.
Several GPUs: ``training.distributed``."""

import dataclasses
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guards.loading import device_and_dtype, model_location

from .common import ProgressReporter, TrainingError, latest_checkpoint, progress_callback

IGNORE_INDEX = -100


@dataclass(frozen=True)
class LoraSettings:
    """Published defaults to start from: rank 16, alpha 32, every attention and MLP projection."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 0  # rows (packed) or examples per GPU per step; 0: measured (micro_batch)
    gradient_accumulation: int = 1
    max_length: int = 2048
    gradient_checkpointing: bool = False
    warmup: float = 0.0  # steps, or a fraction of all steps when below 1
    save_steps: int = 200
    seed: int = 42
    packing: bool = True
    liger: bool = True  # Liger kernels on CUDA when liger-kernel is installed
    gpus: int = 0  # GPUs (one process each, training.distributed); 0: all the worker's
    fsdp: bool = False  # shard the base across the GPUs (a base that does not fit one GPU)


def encode_example(tokenizer, messages: list[dict], completion: str, max_length: int) -> dict[str, list[int]] | None:
    """Token ids of the chat prompt plus the assistant's completion; labels only on the
    completion (prompt tokens are IGNORE_INDEX). None when it does not fit in ``max_length``."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": completion}], tokenize=False)
    if not full.startswith(prompt):
        raise TrainingError("the chat template does not extend the prompt with the answer; cannot mask the prompt")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None and (not answer_ids or answer_ids[-1] != tokenizer.eos_token_id):
        answer_ids.append(tokenizer.eos_token_id)
    ids = prompt_ids + answer_ids
    if len(ids) > max_length:
        return None
    return {"input_ids": ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def pack_examples(examples: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Rows of at most ``max_length`` tokens, each several whole examples end to end (first fit,
    longest first): ``position_ids`` restart at every example and each example's first label is
    IGNORE_INDEX, so that nothing is learnt across a boundary."""
    rows: list[list[dict[str, list[int]]]] = []
    room: list[int] = []
    for example in sorted(examples, key=lambda e: -len(e["input_ids"])):
        size = len(example["input_ids"])
        spot = next((i for i, left in enumerate(room) if left >= size), None)
        if spot is None:
            rows.append([])
            room.append(max_length)
            spot = len(rows) - 1
        rows[spot].append(example)
        room[spot] -= size
    packed = []
    for row in rows:
        packed.append(
            {
                "input_ids": [token for e in row for token in e["input_ids"]],
                "labels": [label for e in row for label in [IGNORE_INDEX, *e["labels"][1:]]],
                "position_ids": [position for e in row for position in range(len(e["input_ids"]))],
            }
        )
    return packed


class PackedCollator:
    """Stacks packed rows, the shorter ones filled up to the longest with a padding block (its own
    restarting positions, no labels), and no attention mask: transformers reads the example
    boundaries from the position ids, so attention stays inside each example."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(row["input_ids"]) for row in batch)
        ids, labels, positions = [], [], []
        for row in batch:
            fill = width - len(row["input_ids"])
            ids.append(row["input_ids"] + [self.pad_id] * fill)
            labels.append(row["labels"] + [IGNORE_INDEX] * fill)
            positions.append(row["position_ids"] + list(range(fill)))
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
        }


class CompletionCollator:
    """Pads a batch to its longest example (labels padded with IGNORE_INDEX)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(item["input_ids"]) for item in batch)

        def padded(key: str, value: int) -> Any:
            return torch.tensor([item[key] + [value] * (width - len(item[key])) for item in batch])

        mask = torch.tensor([[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"])) for item in batch])
        return {
            "input_ids": padded("input_ids", self.pad_id),
            "labels": padded("labels", IGNORE_INDEX),
            "attention_mask": mask,
        }


def train_lora(
    base_model: str,
    train: list[dict],
    validation: list[dict],
    output: Path,
    settings: LoraSettings,
    report: ProgressReporter,
) -> dict[str, Any]:
    """Trains, saves the adapter to ``output/adapter`` and returns metrics; resumes from the newest
    checkpoint in ``output/checkpoints``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    location = model_location(base_model)
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [encode_example(tokenizer, e["messages"], e["completion"], settings.max_length) for e in train]
    kept = [item for item in encoded if item is not None]
    if not kept:
        raise TrainingError(f"no training example fits in max_length={settings.max_length} tokens")
    held_out = [encode_example(tokenizer, e["messages"], e["completion"], settings.max_length) for e in validation]
    held_out = [item for item in held_out if item is not None]

    device, dtype, bf16 = device_and_dtype()
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    model.config.use_cache = False  # a cache would hide the packed rows' example boundaries
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=[m for m in settings.target_modules if any(n.endswith(m) for n, _ in model.named_modules())],
        task_type="CAUSAL_LM",
    )
    if not lora.target_modules:
        raise TrainingError(f"none of the target modules {list(settings.target_modules)} is in {base_model}")
    set_seed(settings.seed)  # the adapter's initial weights: the same in every run and process
    model = get_peft_model(model, lora)
    batch_size = settings.batch_size or micro_batch(model, settings, device)
    if settings.packing:
        train_rows, eval_rows = pack_examples(kept, settings.max_length), pack_examples(held_out, settings.max_length)
        collator: Any = PackedCollator(tokenizer.pad_token_id)
    else:
        train_rows, eval_rows, collator = kept, held_out, CompletionCollator(tokenizer.pad_token_id)
    checkpoints = output / "checkpoints"
    speed: dict[str, Any] = {}
    if not settings.packing and "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        speed["train_sampling_strategy"] = "group_by_length"  # batches of similar lengths: less padding
    if settings.fsdp:
        speed.update(fsdp="full_shard auto_wrap", fsdp_config={"use_orig_params": True})
    if settings.liger and device == "cuda" and importlib.util.find_spec("liger_kernel") is not None:
        speed["use_liger_kernel"] = True
    arguments = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup,
        logging_steps=1,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        bf16=bf16,
        use_cpu=device == "cpu",
        seed=settings.seed,
        report_to=[],
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        disable_tqdm=True,
        ddp_find_unused_parameters=False,
        **speed,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=collator,
        callbacks=[progress_callback(report)],
    )
    result = trainer.train(resume_from_checkpoint=latest_checkpoint(checkpoints))
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "examples": len(kept),
        "too_long": len(encoded) - len(kept),
        "train_tokens": sum(len(item["input_ids"]) for item in kept),
        "seconds": result.metrics.get("train_runtime"),
        "precision": "bf16" if bf16 else "fp32",
        "batch_size": batch_size,
        "packing": settings.packing,
        "rows": len(train_rows),
        "liger": bool(speed.get("use_liger_kernel")),
        "processes": trainer.args.world_size,
    }
    if held_out:
        loss = trainer.evaluate()["eval_loss"]
        metrics.update(eval_loss=loss, eval_perplexity=math.exp(min(loss, 50)))
    if trainer.is_world_process_zero():
        model.save_pretrained(output / "adapter")
        tokenizer.save_pretrained(output / "adapter")
    return metrics


def micro_batch(model, settings: LoraSettings, device: str) -> int:
    """Rows of ``max_length`` tokens per GPU per step that fit in 80 % of the GPU memory left once
    the model is on the GPU, a row's memory measured by one probe step (forward and backward on one
    row, without Liger's fused loss, so on the safe side). A formula of the activations missed what
    peft adds (every adapter keeps an fp32 copy of its input) and the weights themselves, and ran
    the Llama-3.1-8B shape out of memory on an H200. 4 on a CPU; 1 with FSDP (the unsharded model
    may not fit one GPU: set ``batch_size``)."""
    if device != "cuda":
        return 4
    if settings.fsdp:
        return 1
    import torch

    gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # torchrun: this process's GPU
    model.to(gpu)
    model.train()  # gradient checkpointing, if on, applies only in training mode
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(gpu)
    before = torch.cuda.memory_allocated(gpu)
    row = torch.zeros((1, settings.max_length), dtype=torch.long, device=gpu)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        model(input_ids=row, labels=row).loss.backward()
    row_bytes = torch.cuda.max_memory_allocated(gpu) - before
    model.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(gpu)
    return rows_that_fit(free, row_bytes)


def rows_that_fit(free_bytes: int, row_bytes: int) -> int:
    """Rows of ``row_bytes`` each in 80 % of ``free_bytes`` (the rest for the optimizer's state and
    the allocator's fragmentation), between 1 and 64."""
    return max(1, min(64, int(0.8 * free_bytes) // max(1, row_bytes)))
